from knotenpunkt.i18n import message, negotiate, register_messages


def test_german_is_the_default_and_english_is_available() -> None:
    assert negotiate(None) == "de"
    assert negotiate("fr-FR") == "de"
    assert negotiate("en-GB,en;q=0.9") == "en"
    assert negotiate("fr;q=1.0, en;q=0.5, de;q=0.8") == "de"


def test_messages_fill_their_parameters() -> None:
    assert message("less_than_equal", "en", le=600) == "The value must be at most 600."
    assert message("less_than_equal", "de", le=600) == "Der Wert darf höchstens 600 sein."
    assert message("no-such-code", "en") == "Invalid input."


def test_message_parameters_may_be_named_like_the_arguments() -> None:
    # A rule's message about a language or a code must not collide with message()'s own arguments.
    register_messages({"unknown_spoken_language": {"de": "Unbekannt: {language}", "en": "Unknown: {language}"}})
    assert message("unknown_spoken_language", "en", language="xx") == "Unknown: xx"
    assert message("unknown_spoken_language", "de", code="c", language="yy") == "Unbekannt: yy"
