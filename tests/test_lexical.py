"""The BM25 side: typo correction of query terms against the indexed vocabulary, masks, and saving."""

from __future__ import annotations

from app.lexical import LexicalIndex, tokenize

INDEX = LexicalIndex.build(
    "r",
    [("1", "The senator from Massachusetts spoke on Monday.", {}), ("2", "The ferry to Geneva leaves at noon.", {})],
)


def terms(text: str) -> list[str]:
    return tokenize([text], as_ids=False)[0]


def test_an_unknown_term_one_typo_away_is_corrected():
    assert INDEX.corrected("Who is the senator from Masschusetts?") == terms("Who is the senator from Massachusetts?")
    assert INDEX.corrected("ferry to Genvea") == terms("ferry Geneva")  # two letters swapped
    assert INDEX.corrected("Massachusetts senatr") == terms("Massachusetts senator")


def test_known_terms_and_hopeless_ones_are_left_alone():
    assert INDEX.corrected("senator from Massachusetts") is None  # nothing unknown
    assert INDEX.corrected("zebra crossing") is None  # unknown, but nothing indexed is one typo away
    assert INDEX.corrected("Massachusettes senatorial") is None  # two edits away is not a typo
    assert INDEX.corrected("Gva") is None  # too short to correct


def test_corrected_terms_search_like_a_query():
    assert INDEX.search(INDEX.corrected("Masschusetts"), 5)[0][0] == "1"
    assert INDEX.search("Masschusetts", 5) == []
    assert LexicalIndex.build("r", []).corrected("anything") is None


DATED = LexicalIndex.build(
    "r",
    [
        ("a", "Harbor bridge closes", {"published_day": 20240115, "dated": True, "source": "Coast Daily"}),
        ("b", "Harbor bridge history", {"dated": False, "source": "Inland Times"}),
        ("c", "Harbor bridge tolls", {"published_day": 20240405, "dated": True, "source": "Inland Times"}),
    ],
)


def admitted(where: dict) -> list[str]:
    return [i for i, keep in zip(DATED.ids, DATED.admitting(where)) if keep]


def test_filters_are_judged_on_the_fields_kept_as_chroma_judges_them():
    assert admitted({"published_day": {"$lte": 20240301}}) == ["a"]  # an undated chunk has no day
    assert admitted({"$or": [{"dated": False}, {"published_day": {"$lte": 20240301}}]}) == ["a", "b"]
    assert admitted({"source": {"$in": ["Inland Times"]}}) == ["b", "c"]
    assert admitted({"$and": [{"source": {"$in": ["Inland Times"]}}, {"published_day": {"$gte": 20240101}}]}) == ["c"]
    assert admitted({"source": "Nobody"}) == []
    assert DATED.admitting({"title": "Harbor"}) is None  # a field not kept: Chroma judges it
    assert DATED.admitting({"published_day": {"$ne": 1}}) is None


def test_a_masked_search_leaves_out_what_the_filter_does_not_admit():
    mask = DATED.admitting({"source": {"$in": ["Inland Times"]}})
    assert {i for i, _ in DATED.search("harbor bridge", 3, mask)} == {"b", "c"}
    assert [i for i, _ in DATED.search("closes", 3, mask)] == []


def test_admitted_reads_the_mask_by_chunk_id_and_refuses_ids_it_does_not_hold():
    mask = DATED.admitting({"source": {"$in": ["Inland Times"]}})
    assert DATED.admitted(["c", "a", "b", "written-since"], mask) == [True, False, True, False]


def test_saves_at_once_never_write_into_each_other(tmp_path):
    """Threads (and processes) saving the same index at once, as the chat page's askers and a feed
    refresh did: each save is whole or refused with OSError, and a whole copy is left, nothing else."""
    import threading

    folder = tmp_path / "lexical" / "newsqa"
    index = LexicalIndex.build(
        "r", [(str(n), f"Story {n} of the ferry, the harbour and the tolls.", {}) for n in range(2000)]
    )
    failures: list[BaseException] = []

    def save(n: int) -> None:
        for _ in range(5):
            try:
                index.save(folder)
            except OSError:
                pass  # the other saver's copy went in first
            except BaseException as error:  # noqa: BLE001 (reported below)
                failures.append(error)

    savers = [threading.Thread(target=save, args=(n,)) for n in range(6)]
    for saver in savers:
        saver.start()
    for saver in savers:
        saver.join()
    assert failures == []
    saved = LexicalIndex.load(folder)
    assert saved is not None and saved.ids == index.ids
    assert sorted(p.name for p in folder.parent.iterdir()) == ["newsqa"]
