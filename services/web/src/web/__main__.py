from knotenpunkt.service import serve
from web.app import create_app
from web.settings import WebSettings

settings = WebSettings()
serve(create_app(settings), settings)
