from intake.app import create_app
from intake.settings import IntakeSettings
from knotenpunkt.service import serve

settings = IntakeSettings()
serve(create_app(settings), settings)
