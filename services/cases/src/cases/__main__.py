from knotenpunkt.service import serve

from cases.app import create_app
from cases.settings import CasesSettings

settings = CasesSettings()
serve(create_app(settings), settings)
