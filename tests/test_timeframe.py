"""Questions that know the date: as_of, relative expressions resolved by dateparser, and answers over a
real index of dated articles (nothing after as_of; "this week" a window; undated documents kept;
answers citing several dates ordered by date)."""

from __future__ import annotations

import pytest

from rag.timeframe import resolve
from rag.types import Document, QueryError, SearchFilters

AS_OF = "2022-10-07"  # a Friday


# (question, the window's first day, the named period's end (with grace) where it is before as_of).
# News of a period is published from its start until the question is asked: the window ends at as_of.
@pytest.mark.parametrize("question, since, period_until", [
    ("What happened yesterday in Ukraine?", "2022-10-06", None),
    ("Which country did North Korea fire a missile over this week?", "2022-09-30", None),
    ("Who resigned last week?", "2022-09-24", "2022-10-02"),
    ("What did the central bank decide this month?", "2022-10-01", None),
    ("What did the Fed decide in March?", "2022-03-01", "2022-04-07"),
    ("What did the Fed decide in December?", "2021-12-01", "2022-01-07"),  # the last December before as_of
    ("What has happened since March 3?", "2022-03-03", None),
    ("What was announced two weeks ago?", "2022-09-17", "2022-09-25"),
    ("What was the inflation rate this year?", "2022-01-01", None),
    ("What percentage of babies were born to unmarried parents last year?", "2021-01-01", "2022-01-14"),
    ("Who won the vote on Tuesday?", "2022-10-04", "2022-10-05"),
    # Asked on a Friday, "Friday" is today (dateparser, preferring the past, reads the Friday before).
    ("Which executive was convicted on fraud charges Friday?", "2022-10-07", None),
    ("What did the jury decide last Friday?", "2022-09-30", "2022-10-01"),
])
def test_relative_expressions_become_publication_windows(question, since, period_until):
    frame = resolve(question, AS_OF)
    assert (frame.since, frame.until, frame.period_until) == (since, AS_OF, period_until), frame.describe()
    assert frame.expressions and frame.expressions[0].text.lower() in question.lower()
    assert frame.query != question and len(frame.query.split()) >= 2  # the date words are not searched


@pytest.mark.parametrize("question, expression, query", [
    # dateparser finds no time word in these whole questions (a word like "Covid-19" beside the
    # expression, a comma after it, a possessive), though it reads each expression alone.
    ("Which official tested positive for Covid-19 this week?", "this week", "Which official tested positive for Covid-19?"),
    ("Congress passed a bill on gun safety this week, but which measure did it leave out?", "this week",
     "Congress passed a bill on gun safety, but which measure did it leave out?"),
    ("This week’s supermoon is named after which animal?", "This week", "supermoon is named after which animal?"),
    # Here it finds only "The Jan" (an event's date, no window): the expression is searched for too.
    ("The Jan. 6 committee held an unexpected hearing this week, featuring testimony from an aide. Who?", "this week",
     "The Jan. 6 committee held an unexpected hearing, featuring testimony from an aide. Who?"),
])
def test_an_expression_dateparser_misses_in_the_whole_question_is_found_with_its_neighbours(question, expression, query):
    frame = resolve(question, AS_OF)
    assert (frame.since, frame.until) == ("2022-09-30", "2022-10-07"), frame.describe()
    assert [e.text for e in frame.expressions] == [expression] and frame.query == query


@pytest.mark.parametrize("question", [
    "Who won the 2010 World Cup?",  # an event's year: a fact, not a publication window
    "Which supercar maker recalled every car it has made since 2005?",
    "May the new rules apply to small firms?",  # "May" the verb
    "Why did protesters march through Paris?",
    "How many doses of Sputnik V were delivered?",
])
def test_event_dates_and_lookalikes_set_no_window(question):
    frame = resolve(question, AS_OF)
    assert frame.since is None and frame.until is None and not frame.expressions
    assert frame.query == question


def test_latest_questions_favour_recent_articles_and_as_of_bounds_everything():
    assert resolve("What is the latest on the rail strike?", AS_OF).favour_recent
    assert resolve("Who is currently leading the polls?", AS_OF).favour_recent
    assert not resolve("Who won the vote?", AS_OF).favour_recent
    filters = resolve("Who won the vote?", AS_OF).filters()
    assert (filters.since, filters.until, filters.undated) == (None, AS_OF, True)
    # An explicit range narrows the frame, and asks for dated articles only.
    filters = resolve("What happened this week?", AS_OF).filters(SearchFilters(until="2022-10-05"))
    assert (filters.since, filters.until, filters.undated) == ("2022-09-30", "2022-10-05", False)
    assert resolve("What happened this week?", AS_OF).filters(SearchFilters(until="2022-01-01")).matches_nothing
    with pytest.raises(QueryError, match="not a date"):
        resolve("x", "next tuesday")
    with pytest.raises(QueryError, match="outside"):
        resolve("x", "0001-01-01")


STORY = [
    Document("rail-1", "Rail workers began a national strike on Monday, halting 80 percent of trains. The union "
             "said the strike would last three days unless the government raised its pay offer.",
             title="Rail strike begins", date="2022-09-26", source="Wire A"),
    Document("rail-2", "The rail strike ended on Thursday after the union accepted a pay rise of 6 percent. Trains "
             "ran normally again on Friday morning, the operator said.",
             title="Rail strike ends", date="2022-10-06", source="Wire B"),
    Document("rail-3", "The rail union announced a second strike for November after talks on working hours broke "
             "down. The union said 40,000 members would walk out.",
             title="Second rail strike called", date="2022-10-20", source="Wire A"),
    Document("wiki-rail", "A rail strike is a labour action by railway workers. Rail strikes have a long history "
             "in Europe, where unions organised the first national rail strikes in the 19th century.",
             title="Rail strike (reference)", date=None, source="Encyclopedia"),
]


@pytest.fixture
def story_index(open_index, settings):
    from rag.ingest.pipeline import IngestPipeline

    index = open_index()
    IngestPipeline(index, progress=False).add_records(STORY)
    index.checkpoint()
    return index


def test_search_uses_nothing_after_as_of_and_keeps_undated_documents(story_index):
    from rag.retrieve import Retriever

    retriever = Retriever(story_index)
    everything = {h.doc_id for h in retriever.run("rail strike union", k=10, as_of="2030-01-01")}
    assert everything == {"rail-1", "rail-2", "rail-3", "wiki-rail"}
    before = {h.doc_id for h in retriever.run("rail strike union", k=10, as_of="2022-10-07")}
    assert before == {"rail-1", "rail-2", "wiki-rail"}  # rail-3 is dated after as_of; undated stays
    this_week = {h.doc_id for h in retriever.run("rail strike this week", k=10, as_of="2022-10-07")}
    assert this_week == {"rail-2"}  # a window asks for news of that week: undated pages are not
    explicit = {h.doc_id for h in retriever.run("rail strike", k=10, filters=SearchFilters(since="2022-01-01"),
                                                as_of="2030-01-01")}
    assert explicit == {"rail-1", "rail-2", "rail-3"}  # an explicit range asks for dated articles
    story_index.settings.retrieval.timeframe = False
    assert {h.doc_id for h in retriever.run("rail strike union", k=10, as_of="2022-10-07")} == everything


def test_since_an_event_counts_from_when_the_corpus_reported_it(story_index):
    from rag.ingest.pipeline import IngestPipeline
    from rag.retrieve import Retriever

    retriever = Retriever(story_index)
    question = "What did the union ask for since the strike?"
    # Two articles a year apart are no burst: the strike cannot be dated from them.
    assert retriever.frame(question, "2022-10-07").expressions == []
    IngestPipeline(story_index, progress=False).add_records([
        Document("rail-1b", "Commuters crowded onto buses as the national rail strike stopped most trains on Monday.",
                 title="Commuters stranded by rail strike", date="2022-09-26", source="Wire C"),
        Document("rail-1c", "The second day of the rail strike left freight stuck at the ports, the operators said.",
                 title="Rail strike day two", date="2022-09-27", source="Wire A"),
    ])
    story_index.checkpoint()
    frame = retriever.frame(question, "2022-10-07")
    assert (frame.since, frame.until) == ("2022-09-26", "2022-10-07") and frame.expressions[0].text == "since the strike"
    assert {h.doc_id for h in retriever.run(question, k=10, as_of="2022-10-07")} == {"rail-1", "rail-1b", "rail-1c", "rail-2"}
    # Not events: one the corpus does not report, a clause, a calendar span; and no corpus, no date.
    assert retriever.frame("What changed since the coronation?", "2022-10-07").expressions == []
    assert retriever.frame("What changed since the strike began?", "2022-10-07").expressions == []
    assert retriever.frame("How many trains ran since the start of the year?", "2022-10-07").expressions == []
    assert resolve(question, "2022-10-07").expressions == []


def test_a_named_period_is_searched_until_as_of_and_its_own_news_ranks_first(open_index):
    from rag.ingest.pipeline import IngestPipeline
    from rag.retrieve import Retriever

    index = open_index()
    IngestPipeline(index, progress=False).add_records([
        Document("rates-march", "The central bank raised borrowing costs by a quarter point, its first increase "
                 "in three years, to fight inflation.", title="Central bank acts on inflation", date="2022-03-16"),
        Document("rates-sept", "The central bank changed interest rates again on Wednesday: it raised them by three "
                 "quarters of a point.", title="How the central bank changed interest rates", date="2022-09-21"),
        Document("births", "Official figures published on Tuesday show 624,828 babies were born in England and "
                 "Wales last year, the fewest since 2002.", title="Births fall to a 20-year low", date="2022-08-09"),
        Document("births-old", "Maternity wards reopened to visitors after the lockdown.", title="Hospitals",
                 date="2021-06-01"),
    ])
    index.checkpoint()
    retriever = Retriever(index)
    # Last year's figure is published this summer: before, the window ended two weeks into this year.
    question = "How many babies were born in England and Wales last year?"
    assert "births" in {h.doc_id for h in retriever.run(question, k=3, as_of="2022-10-07")}
    # A later report stays findable, but among the passages about the question, March's news of
    # March comes first; without the period's preference the later, closer wording wins.
    question = "How did the central bank change interest rates in March?"
    frame = retriever.frame(question, "2022-10-07")
    assert (frame.since, frame.until, frame.period_until) == ("2022-03-01", "2022-10-07", "2022-04-07")
    hits = retriever.run(question, k=2, as_of="2022-10-07")
    assert [h.doc_id for h in hits] == ["rates-march", "rates-sept"]
    unranked = retriever.ranked(frame.query, k=2, filters=frame.filters())
    assert [h.doc_id for h in unranked] == ["rates-sept", "rates-march"]


def test_answers_say_when_and_order_sources_by_date(story_index):
    from rag.answer import Answerer
    from rag.generate import load_generator

    answerer = Answerer(story_index, story_index.settings, generator=load_generator(story_index.settings, "extractive"))
    # As of 2022-10-07 the second strike was not yet known: the answer comes from the articles before.
    answer = answerer.run("How many percent was the pay rise that ended the rail strike?", as_of="2022-10-07")
    assert not answer.refused and "6 percent" in answer.answer
    assert answer.timeframe.as_of == "2022-10-07" and all(c.date <= "2022-10-07" for c in answer.citations)
    assert answer.to_json()["as_of"] == "2022-10-07"

    # "This week" asked a month later: no articles in that window -> a refusal that says which dates.
    answer = answerer.run("Did the rail strike end this week?", as_of="2022-11-20")
    assert answer.refused and "2022-11-13 to 2022-11-20 ('this week'" in answer.answer
    assert "newest article is dated 2022-10-20" in answer.answer  # and how to ask as of then

    # Citations of different dates: sentences in date order, each prefixed with its date.
    from rag.types import AnswerSentence, Citation

    def cited(n, day):
        return Citation(n, f"d{n}", f"c{n}", "t", day, "s", "", "q", 0, 1, 1.0)
    sentences = [AnswerSentence("Later fact.", [1], True, 1.0), AnswerSentence("Earlier fact.", [2], True, 1.0)]
    assembled = answerer._assemble("q", "q", "", sentences, [cited(1, "2022-10-06"), cited(2, "2022-09-26")], [], {})
    assert assembled.answer == "2022-09-26: Earlier fact. [1] 2022-10-06: Later fact. [2]"
    assert [c.date for c in assembled.citations] == ["2022-09-26", "2022-10-06"]


def test_timeline_orders_a_story_by_date_from_the_cli(story_index, settings):
    import json

    from conftest import run_cli

    story_index.close()
    done = run_cli("timeline", "rail strike", "--as-of", "2022-10-07", "--json", "--index", str(settings.index_dir))
    assert done.returncode == 0, done.stderr
    timeline = json.loads(done.stdout)
    dated = [e["date"] for e in timeline["entries"] if e["date"]]
    assert dated == sorted(dated) and {"2022-09-26", "2022-10-06"} <= set(dated) and "2022-10-20" not in dated
    assert timeline["entries"][-1]["date"] is None  # the undated reference page comes last
    assert {"date": "2022-09-26", "articles": 1} in timeline["per_day"]
    text = run_cli("timeline", "rail strike", "--as-of", "2022-10-07", "--index", str(settings.index_dir)).stdout
    assert text.index("2022-09-26") < text.index("2022-10-06") and "█" in text
