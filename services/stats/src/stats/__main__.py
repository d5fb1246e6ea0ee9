from knotenpunkt.service import serve
from stats.app import create_app
from stats.settings import StatsSettings

settings = StatsSettings()
serve(create_app(settings), settings)
