from tools.gendocs import GENERATED


def test_generated_docs_are_current() -> None:
    stale = [str(path) for path, render in GENERATED.items() if not path.exists() or path.read_text() != render()]
    assert stale == [], "run `uv run python -m tools.gendocs` and commit the result"
