from partner_agency.agency import main

main()
