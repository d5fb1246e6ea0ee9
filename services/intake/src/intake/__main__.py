from knotenpunkt.service import serve

from intake.app import create_app
from intake.settings import IntakeSettings

settings = IntakeSettings()
serve(create_app(settings), settings)
