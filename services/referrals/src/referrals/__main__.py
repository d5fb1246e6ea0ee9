from knotenpunkt.service import serve
from referrals.app import create_app
from referrals.settings import ReferralsSettings

settings = ReferralsSettings()
serve(create_app(settings), settings)
