from knotenpunkt.i18n import message, negotiate


def test_german_is_the_default_and_english_is_available() -> None:
    assert negotiate(None) == "de"
    assert negotiate("fr-FR") == "de"
    assert negotiate("en-GB,en;q=0.9") == "en"
    assert negotiate("fr;q=1.0, en;q=0.5, de;q=0.8") == "de"


def test_messages_fill_their_parameters() -> None:
    assert message("less_than_equal", "en", le=600) == "The value must be at most 600."
    assert message("less_than_equal", "de", le=600) == "Der Wert darf höchstens 600 sein."
    assert message("no-such-code", "en") == "Invalid input."
