"""messages.pot is current: extracting the messages again from the code and templates finds no new
message and none that is gone (`flask translate update` makes it so)."""

from babel.messages.pofile import read_po

from app.cli import POT, extract_messages


def ids(catalog):
    return {m.id if isinstance(m.id, str) else tuple(m.id) for m in catalog if m.id}


def load(path):
    with open(path, "rb") as f:
        return read_po(f)


def test_messages_pot_is_not_stale(tmp_path):
    fresh = tmp_path / "messages.pot"
    extract_messages(str(fresh))
    committed, current = ids(load(POT)), ids(load(fresh))
    assert current - committed == set(), "new messages: run `flask translate update` and translate them"
    assert committed - current == set(), "messages no longer used: run `flask translate update`"
