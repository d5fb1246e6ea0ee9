from cases.app import create_app
from cases.settings import CasesSettings
from knotenpunkt.service import serve

settings = CasesSettings()
serve(create_app(settings), settings)
