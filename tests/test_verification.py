"""Verification of answers, output hygiene and the composer, on a hand-made article (not the seed).

Each failure class a newcomer hit is a regression test here: a number inside "3+3", qualifiers, a
garbage prefix, a paraphrased correct answer, a vague sentence, dates, tight quotes, extractive
answers of one sentence; and the bundled model end to end on questions phrased afresh.
"""

import json

import pytest

from conftest import shared_data
from rag.answer import REFUSAL, Answerer
from rag.compose import AnswerComposer
from rag.entities import EntityTagger
from rag.facts import dates, dates_agree, quantities, quantities_agree
from rag.generate import ChatGenerator, load_generator
from rag.grounding import GroundingChecker, balanced, split_sentences, surface_tokens
from rag.hygiene import StreamCleaner, clean_draft
from rag.prompt import PromptBuilder
from rag.question import QuestionAnalyzer
from rag.retrieve import Retriever

ARTICLE = """date 2023-05-10 Vienna, May 10, DANUBE WIRE

Ministers from eleven countries met in Vienna on Tuesday for the Danube Trade Forum.

The forum agreed on a new cooperation format called "2+4", which links two river ports with four inland rail hubs. The initiative, first proposed in March 2021, is expected to cost $4.5 billion.

Trade between the member states grew by 12 percent compared to 2022, reaching $38.6 billion. More than 40 regions of the participating countries have signed partnership agreements.

The forum's secretariat is headed by Ambassador Helga Brandt of Austria. About 65,000 trucks cross the Danube bridges every day, according to the secretariat.

* * *

Delegates also discussed river pollution. The next forum will be held in Budapest in October 2024.
"""


class ScriptedLLM:
    """A stand-in chat model: replies with fixed text (for what the answer path does with a reply)."""

    backend, model, context_tokens = "scripted", "scripted", 2048

    def __init__(self, reply):
        self.reply = reply

    def stream(self, messages, max_tokens):
        for word in self.reply.split(" "):
            yield word + " "


@pytest.fixture
def forum(tmp_path, ingest, open_index):
    folder = tmp_path / "news"
    folder.mkdir()
    (folder / "forum.txt").write_text(ARTICLE, encoding="utf-8")
    ingest(folder)
    return open_index(writable=False)


@pytest.fixture(scope="module")
def checker(embedder):
    return GroundingChecker(embedder)


def scripted(index, settings, reply):
    return Answerer(index, settings, generator=ChatGenerator(ScriptedLLM(reply), PromptBuilder(settings.llm), 64))


def check_quotes(answer, index):
    for citation in answer.citations:
        assert index.metadata.get_document(citation.doc_id)["text"][citation.start:citation.end] == citation.quote


def article_sources(checker):
    return checker.document_sentences(ARTICLE)


# -- quantities and dates ---------------------------------------------------------------------------
def test_quantities_parse_values_units_and_qualifiers():
    found = {q.text: q for q in quantities('A "3+3" format, the 30th anniversary, $3.3 billion, more than 70, '
                                             'about 220,000 doses, 220 thousand, 16 percent, over 70.')}
    assert "3+3" not in found and "3" not in found  # a name, not a quantity
    assert found["30th"].ordinal and found["$3.3 billion"].value == 3.3e9 and found["$3.3 billion"].unit == "usd"
    assert quantities_agree(found["about 220,000"], found["220 thousand"])
    assert quantities_agree(found["more than 70"], found["over 70"])
    assert found["16 percent"].unit == "%"
    three, = quantities("3")
    assert not any(quantities_agree(three, q) for q in found.values())
    fewer, = quantities("fewer than 70")
    assert not quantities_agree(fewer, found["more than 70"])


def test_dates_compare_as_dates():
    november, = dates("the statement of November 2020")
    assert dates_agree(dates("in Nov. 2020")[0], november)
    assert not dates_agree(dates("2020-11-10")[0], november)  # the source gives no day to confirm
    assert dates_agree(dates("November 10, 2020")[0], dates("10 November 2020")[0])
    assert not dates_agree(dates("March 2021")[0], november)
    day, = dates("on February 23")
    assert dates_agree(dates("February 23, 2022")[0], day, 2022)  # the year from the article's date


# -- the checker ----------------------------------------------------------------------------------
@pytest.mark.parametrize("question, claim, supported", [
    ("How many regions have signed partnership agreements?", "Over 40 regions have signed partnership agreements.", True),
    ("How many regions have signed partnership agreements?", "Fewer than 40 regions have signed agreements.", False),
    ("How many regions have signed partnership agreements?", "2 regions have signed partnership agreements.", False),
    ("How many trucks cross the Danube bridges every day?", "About 65 thousand trucks cross the bridges every day.", True),
    ("How many trucks cross the Danube bridges every day?", "65,000", True),
    ("How many trucks cross the Danube bridges every day?", "Around 56,000 trucks cross the bridges.", False),
    ("How much is the initiative expected to cost?", "It is expected to cost 4.5 billion dollars.", True),
    ("How much is the initiative expected to cost?", "It is expected to cost $4.5 million.", False),
    ("When was the initiative first proposed?", "It was first proposed in March 2021.", True),
    ("When was the initiative first proposed?", "It was first proposed in March 2022.", False),
    ("Who heads the forum's secretariat?", "Helga Brandt, an Austrian ambassador, leads the secretariat of the forum.", True),
    ("Who heads the forum's secretariat?", "Ambassador Klaus Weber of Germany heads the secretariat.", False),
    ("What did the forum agree on?", "The forum agreed on a new cooperation format called 2+5.", False),
])
def test_what_a_claim_adds_to_its_question_must_be_in_the_source(checker, question, claim, supported):
    verdict, = checker.check([claim], article_sources(checker), question=question)
    assert verdict.supported is supported, (verdict.score, verdict.features, verdict.source.text if verdict.source else None)


def test_every_item_a_claim_lists_must_be_in_its_source(checker):
    """A small model adds an item to a list the sentence gives ("energy, transportation, and logistics"
    from "energy, engineering, transport"); the claim's other words outvote it in the soft score, so
    each listed noun is checked like a fact. Found newcomer-style on the seed article."""
    sources = checker.document_sentences("A very large number of joint projects are being implemented in the field of "
                                         "energy, engineering, transport. Delegates also discussed river pollution.")
    question = "In which fields are joint projects being implemented?"
    added, shorter, same = checker.check([
        "The joint projects are being implemented in the field of energy, transportation, and logistics.",
        "The joint projects are being implemented in the field of energy and transportation.",
        "Energy, engineering and transportation are the fields of the joint projects.",
    ], sources, question=question)
    assert not added.supported, (added.score, added.features)
    assert shorter.supported and same.supported, (shorter.score, same.score)


@pytest.mark.parametrize("question, vague, real", [
    ("How many regions have signed partnership agreements?",
     "Regions of the participating countries have signed partnership agreements.", "More than 40 regions have signed them."),
    ("What cooperation format did the forum agree on?",
     "The forum agreed on a new cooperation format.", "The forum agreed on the 2+4 format."),
    ("Who heads the forum's secretariat?", "The secretariat of the forum is headed by an ambassador.",
     "Helga Brandt heads it."),
])
def test_a_vague_or_restated_answer_does_not_answer(checker, embedder, question, vague, real):
    asks = QuestionAnalyzer(checker.tagger, embedder).run(question)
    vague_verdict, real_verdict = checker.check([vague, real], article_sources(checker), question=question, asks=asks)
    assert not (vague_verdict.supported and vague_verdict.answers), vague_verdict
    assert real_verdict.supported and real_verdict.answers, real_verdict


# -- hygiene --------------------------------------------------------------------------------------
@pytest.mark.parametrize("raw, clean", [
    ("The answer is: 3 [1]", "3"),
    ("The answer to this question is: 3.3 billion.", "3.3 billion."),
    ("Х Х Х President Brandt said: thank you.", "President Brandt said: thank you."),
    ("According to passage [2], about 65,000 trucks cross daily.", "About 65,000 trucks cross daily."),
    ("* * *\nMore than 40 regions signed. They also", "More than 40 regions signed."),
    ("Budapest, Budapest, Budapest will host it.", "Budapest, will host it."),
    ("Based on the context, trade grew by 12 percent [1][2].", "Trade grew by 12 percent."),
])
def test_scaffolding_layout_loops_and_markers_are_removed(raw, clean):
    assert clean_draft(raw) == clean


def test_streamed_draft_never_shows_what_cleaning_removes():
    cleaner = StreamCleaner()
    pieces = [word + " " for word in "Х Х Х The answer is: more than 40 regions [1] signed.".split(" ")]
    shown = "".join(cleaner.feed(piece) for piece in pieces)
    shown += cleaner.finish()
    assert shown == clean_draft("Х Х Х The answer is: more than 40 regions [1] signed.")
    assert "Х" not in shown and "answer" not in shown.lower() and "[" not in shown


# -- the answer path with scripted drafts -----------------------------------------------------------
def test_a_wrong_number_inside_a_code_is_never_cited(forum, settings):
    question = "How many regions have signed partnership agreements?"
    answer = scripted(forum, settings, "The answer is: 2 [1]").run(question)
    assert not answer.refused
    assert "40" in answer.answer and answer.answer.startswith("“")  # the quote replaced the wrong draft
    assert all(not (s.supported and s.text.strip(". ") == "2") for s in answer.sentences)
    check_quotes(answer, forum)


def test_a_garbage_prefixed_terse_answer_is_cleaned_and_verified(forum, settings):
    answerer = scripted(forum, settings, "* * * Х Х Х The answer is: more than 40 [2]")
    pieces = list(answerer.stream("How many regions have signed partnership agreements?"))
    answer, streamed = pieces[-1], "".join(piece.text for piece in pieces[:-1])
    assert "Х" not in streamed and "*" not in streamed and "answer" not in streamed.lower()
    assert answer.answer == "More than 40 [1]" and "More than 40 regions" in answer.citations[0].quote
    check_quotes(answer, forum)


def test_a_vague_sentence_gives_way_to_the_sentence_that_names_the_fact(forum, settings):
    answer = scripted(forum, settings, "The forum agreed on a new cooperation format.").run(
        "What cooperation format did the forum agree on?")
    assert not answer.refused and "2+4" in answer.answer and "2+4" in answer.citations[0].quote


def test_a_paraphrased_correct_answer_is_accepted_with_a_tight_quote(forum, settings):
    answer = scripted(forum, settings, "Helga Brandt, an Austrian ambassador, leads the secretariat of the forum.").run(
        "Who heads the forum's secretariat?")
    assert answer.sentences[0].supported and answer.answer.endswith("[1]") and not answer.answer.startswith("“")
    quote = answer.citations[0].quote
    assert "Helga Brandt" in quote and "65,000" not in quote  # one sentence, not the pair
    check_quotes(answer, forum)


def test_quotes_are_trimmed_to_the_clause_that_supports_the_claim(forum, settings):
    answer = scripted(forum, settings, "Trade between the member states grew by 12 percent compared to 2022.").run(
        "By how much did trade between the member states grow?")
    quote = answer.citations[0].quote
    assert "12 percent" in quote and "38.6" not in quote and "regions" not in quote
    check_quotes(answer, forum)


def test_a_quoted_clause_stands_alone():
    """A clause cut from a sentence keeps its verb's complement, both halves of its brackets, and the
    noun its pronoun refers to; an answering clause is still cut from a long sentence."""
    from rag.compose import clause_spans
    from rag.entities import EntityTagger

    assert balanced("the Duke of York (later King James II)") and not balanced("the Duke of York (later King James II")
    assert not balanced("King James II) of England") and not balanced('he said "no')
    tagger = EntityTagger()

    def clauses(sentence):
        return [sentence[a:b] for a, b in clause_spans(tagger.parse(sentence))]

    cut = clauses("For example, if ARR = 7 %, then it means that the project is expected to earn seven cents per dollar.")
    assert cut and not any(c.endswith("it means") for c in cut)
    cut = clauses("In 1664 the town was renamed New York, after the Duke of York (later King James II of England).")
    assert cut and all(balanced(c) for c in cut)
    cut = clauses("The term was first used as a slur, but it was later reappropriated by the people of North Carolina.")
    assert cut and not any(c.startswith("it ") for c in cut)
    cut = clauses("You probably spoke about this in detail, the trade turnover has grown by 16 percent compared to 2020, "
                  "reaching $3.3 billion.")
    assert "the trade turnover has grown by 16 percent compared to 2020" in cut
    # No clause starts after an abbreviation's period: the parser makes the character the subject.
    for sentence in ('Actress and singer Jane Dorsey, best known for her portrayal of Lt. Mara Kovac in "Orbit Patrol," '
                     'has died at age 84, according to a statement from her son.',
                     'Singer Paul Avery, famous for his role as Sgt. Tom Briggs in the series "Harbor Watch," died on Sunday at 77.',
                     'Veteran actress Ruth Gale, who played Capt. Irena Volk in "Deep Station," has died at age 91.'):
        assert not any(c.startswith(("Mara", "Tom", "Irena")) for c in clauses(sentence)), clauses(sentence)


def test_extractive_answers_with_one_quoted_sentence(forum, settings):
    answer = Answerer(forum, settings, generator=load_generator(settings, "extractive")).run(
        "How many trucks cross the Danube bridges every day?")
    assert not answer.refused and len(answer.citations) == 1 and "65,000" in answer.citations[0].quote
    assert answer.answer.count("“") == 1 and "pollution" not in answer.answer
    check_quotes(answer, forum)


def test_out_of_corpus_questions_are_refused(forum, settings):
    answer = Answerer(forum, settings, generator=load_generator(settings, "extractive")).run(
        "Who won the 2018 football World Cup final?")
    assert answer.refused and answer.answer == REFUSAL and answer.retrieved


# -- the bundled model, end to end --------------------------------------------------------------------
@pytest.fixture(scope="module")
def bundled():
    from rag.config import Settings

    settings = Settings.load(env={})
    settings.llm.llamacpp.threads = 1
    return load_generator(settings, "llamacpp")


@pytest.mark.parametrize("question, fact", [
    ("How many trucks go over the bridges on the Danube each day?", "65,000"),
    ("Who leads the forum's secretariat?", "Helga Brandt"),
    ("Where will the next forum take place?", "Budapest"),
    ("What is the initiative expected to cost?", "4.5 billion"),
    ("How many regions have signed partnership deals?", "40"),
    ("By how much did trade between the member states grow?", "12 percent"),
])
def test_the_bundled_model_answers_new_phrasings_with_the_fact(forum, settings, bundled, question, fact):
    answer = Answerer(forum, settings, generator=bundled).run(question)
    assert not answer.refused, answer.draft
    assert fact in answer.answer.replace("$", ""), (answer.draft, answer.answer)
    assert any(fact in c.quote.replace("$", "") for c in answer.citations)
    check_quotes(answer, forum)


# -- paraphrases from ClapNQ -------------------------------------------------------------------------
@pytest.mark.shared_data
def test_clapnq_gold_answers_are_accepted_against_their_own_passages(checker):
    """Human-written answers paraphrase their passages: at least 90% must be accepted whole
    (every sentence supported), on the held-out half the checker was not fitted on."""
    path = shared_data("clapnq/dev_answerable_a.jsonl")
    rows = [json.loads(line) for line in open(path, encoding="utf-8")]
    rows = [r for n, r in enumerate(rows) if n % 2 == 1 and r["output"] and r["output"][0]["answer"].strip()]
    accepted = 0
    for row in rows:
        answer = row["output"][0]["answer"]
        claims = [answer[s:e] for s, e in split_sentences(answer)][:3]
        sources = checker.document_sentences("\n\n".join(p["text"] for p in row["passages"]))
        accepted += all(v.supported for v in checker.check(claims, sources, question=row["input"]))
    assert accepted / len(rows) >= 0.9, f"{accepted} of {len(rows)}"


BAKING = """Blind baking

Blind baking means baking a pastry case before the filling goes in. You need to blind bake pastry
when the filling will not be cooked in the oven, or when a wet filling would make the base soggy.
The case is lined with baking paper and filled with ceramic beans so that it keeps its shape.
"""


def test_a_when_question_may_be_answered_by_a_condition_but_a_how_many_needs_a_figure(tmp_path, ingest, open_index, settings):
    """A "when" is answered by an event or a condition as often as by a date (ClapNQ: "when do you need
    to blind bake pastry"); a "how many" with no figure anywhere is still not answered."""
    folder = tmp_path / "kitchen"
    folder.mkdir()
    (folder / "baking.txt").write_text(BAKING, encoding="utf-8")
    ingest(folder)
    index = open_index(writable=False)
    answerer = Answerer(index, settings, generator=load_generator(settings, "extractive"))
    answer = answerer.run("When do you need to blind bake pastry?")
    assert not answer.refused and "blind bak" in answer.citations[0].quote.lower()  # was refused: no date
    check_quotes(answer, index)
    assert answerer.run("How many ceramic beans fill a pastry case?").refused


EXPLAINER = """A Harvest Moon rises tonight

What is a Harvest Moon?

The Harvest Moon is the full moon nearest the autumnal equinox, according to the Old Farmer's Almanac.

Why is it called a Harvest Moon?

The extra light after sunset traditionally gave farmers more time to bring in their crops, and so the name was born.

What does a Harvest Moon look like?

Many skygazers see the Harvest Moon as bigger, brighter and more orange than a typical moon.

The first known written use of the name "Harvest Moon" in the English language was in 1706, per the Oxford English Dictionary.

When is the Harvest Moon?

This year's autumnal equinox is Sunday, Sept. 22, but the Harvest Moon is rising in the night skies already. The moon will reach peak illumination at 10:34 P.M. EDT Tuesday.
"""

POLL = """Biden campaign says voters are with him

Joe Biden's campaign chair, Jen O’Malley Dillon, said the president is still in the race.
She said that of the 100,000 voters the team talked to in battleground states this week, 76% are still with the president, 16% were undecided, and a small share were not available.
While his positive test is taking him off the campaign trail, the president will return to campaigning next week.
"""


@pytest.fixture
def explained(tmp_path, ingest, open_index):
    folder = tmp_path / "explained"
    folder.mkdir()
    (folder / "moon.txt").write_text(EXPLAINER, encoding="utf-8")
    (folder / "poll.txt").write_text(POLL, encoding="utf-8")
    ingest(folder)
    return open_index(writable=False)


def test_a_question_in_the_article_is_never_the_quoted_answer(explained, settings, checker, embedder):
    """An explainer's subheadings ask the reader's questions: close to the question and likely before
    it to a model, yet they state nothing."""
    question = "Why is it called a Harvest Moon?"
    hits = Retriever(explained).run(question, k=5)
    ranked = AnswerComposer(checker).rank(QuestionAnalyzer(checker.tagger, embedder).run(question),
                                          checker.evidence(question, hits))
    asking = [c for c in ranked if c.source.text.endswith("?")]
    assert asking and all(c.score == 0 for c in asking), [(c.source.text, c.score) for c in asking]
    for backend in ("extractive", None):
        answer = Answerer(explained, settings, generator=load_generator(settings, backend)).run(question)
        assert not answer.refused and all("?" not in c.quote for c in answer.citations), answer.answer
        check_quotes(answer, explained)


def test_of_several_amounts_only_the_one_the_question_is_about_answers(explained, settings, checker, embedder):
    """"76% are still with the president, 16% were undecided": the 16% is in the cited sentence and
    the sentence is about the question, but it answers another one."""
    question = "What percentage of voters are still with the president?"
    asks = QuestionAnalyzer(checker.tagger, embedder).run(question)
    sentence = POLL.splitlines()[-2]
    assert [s.text for s in checker.answer_spans(sentence, asks)][:1] == ["76%"]
    assert checker.answers("76%", sentence, asks) and not checker.answers("16%", sentence, asks)
    answer = scripted(explained, settings, "16%").run(question)
    assert "16% [1]" not in answer.answer and "76%" in answer.citations[0].quote, answer.answer
    assert scripted(explained, settings, "76%").run(question).answer == "76% [1]"
    check_quotes(answer, explained)


def test_typographic_apostrophes_match_ascii_ones(explained, settings, checker):
    sources = checker.document_sentences(POLL)
    verdict, = checker.check(["Jen O'Malley Dillon is Biden's campaign chair."], sources[1:2],
                             question="Who is Biden's campaign chair?")
    assert "O’Malley" in verdict.source.text and verdict.features["names_missing"] == 0 and verdict.supported
    answer = scripted(explained, settings, "Jen O'Malley Dillon is Biden's campaign chair.").run(
        "Who is Biden's campaign chair?")
    assert answer.sentences[0].supported and answer.answer.endswith("[1]") and not answer.answer.startswith("“")


def test_a_date_from_a_clause_about_something_else_does_not_answer(explained, settings):
    """"The equinox is Sunday, Sept. 22, but the Harvest Moon is rising already" dates the equinox: a
    draft that makes it the moon's peak is not cited; the sentence with the hour is quoted instead."""
    question = "When does the Harvest Moon reach peak illumination?"
    answer = scripted(explained, settings, "The Harvest Moon reaches peak illumination on September 22nd.").run(question)
    assert "22" not in answer.answer and "10:34" in answer.citations[0].quote, answer.answer
    check_quotes(answer, explained)


@pytest.mark.parametrize("question, moment", [
    ("When does the Harvest Moon reach peak illumination?", "10:34 P.M. EDT Tuesday"),
    ("When will the president return to campaigning?", "next week"),
])
def test_a_weekday_a_clock_time_or_next_week_answers_when(explained, settings, question, moment):
    answer = Answerer(explained, settings, generator=load_generator(settings, "extractive")).run(question)
    assert not answer.refused and moment in answer.citations[0].quote, answer.answer
    check_quotes(answer, explained)


def test_what_is_kept_of_a_sentence_that_went_beyond_its_source_names_nothing_new(explained, settings):
    """A salvaged opening must not keep a noun the sources lack ("the English astronomer" from "in the
    English language"), nor be a fragment without a verb."""
    answer = scripted(explained, settings, "The name Harvest Moon was first used in writing in 1706 by the English "
                      "astronomer, John Taylor, in his book of 1708.").run("When was the name Harvest Moon first used in writing?")
    assert "astronomer" not in answer.answer and "1706" in answer.answer and "Taylor" not in answer.answer, answer.answer
    check_quotes(answer, explained)


def test_how_much_money_is_answered_by_a_sum_not_a_share(explained, settings, checker, embedder):
    """"How much money" asks for a sum: a sentence of percentages does not answer it."""
    analyzer = QuestionAnalyzer(checker.tagger, embedder)
    asks = analyzer.run("How much money has the campaign raised?")
    assert asks.kinds == ("money",) and not checker.answer_spans(POLL.splitlines()[-2], asks)
    assert "percent" in analyzer.run("How much has the campaign grown?").kinds
    answer = Answerer(explained, settings, generator=load_generator(settings, "extractive")).run(asks.text)
    assert answer.refused or "%" not in answer.answer, answer.answer


def test_a_claim_cites_the_supporting_sentence_that_states_its_answer(checker, embedder):
    """The best-scoring source may share a claim's words without stating its answer as the question
    wants it (the small NER model reads "Budapest" opening a sentence as an organisation, so the city
    there is Vienna); another supporting sentence that does state it is cited with it. Seen on RealTime QA ("Walmart is
    slashing prices ..." was rejected while a later sentence of the article named the retailer)."""
    question = "Which city will host the next forum?"
    sources = checker.document_sentences(
        "Budapest will host the next forum in October, officials in Vienna said. Ministers also discussed river "
        "pollution and shipping fees at length. The organisers chose the Hungarian capital, Budapest, over "
        "Vienna on Tuesday to host the next forum in October.")
    verdict, = checker.check(["Budapest will host the next forum in October."], sources, question=question,
                             asks=QuestionAnalyzer(checker.tagger, embedder).run(question))
    cited = " ".join(s.text for s in (verdict.source, verdict.also) if s is not None)
    assert verdict.supported and verdict.answers and "Hungarian capital" in cited, verdict


def test_a_name_the_question_gives_is_not_its_answer(checker, embedder):
    """"Williams" and "the US Open" are named by "Serena Williams ... the U.S. Open. Who did she defeat?",
    so a sentence naming only them gives no answer (a restated question passed as one); "Biden's" names
    "Joe Biden", so the campaign chair is the other name of the sentence."""
    assert surface_tokens("the U.S. Open") == surface_tokens("the US Open") == ["the", "us", "open"]
    analyse = QuestionAnalyzer(checker.tagger, embedder).run
    serena = analyse("Serena Williams pulled off an upset in the second round of the U.S. Open. Who did she defeat?")
    assert checker.answer_spans("The 40-year-old Williams upset the world's second-ranked player in the second "
                                "round of the US Open on Wednesday night.", serena) == []
    chair = analyse("Who is Biden's campaign chair?")
    spans = checker.answer_spans("Joe Biden's campaign chair, Jen O’Malley Dillon, said the president is still in "
                                 "the race.", chair)
    assert [s.text for s in spans] == ["Jen O’Malley Dillon"], spans




def test_initials_and_a_currency_named_without_a_figure_are_read_as_the_source_reads_them(checker, embedder):
    """"U.S." in a claim is the source's "U.S." (it was read as two missing names, "u" and "s", which
    halves a claim's score), and "the euro" answers "which currency" (a currency name was dropped as a
    quantity's word, so the claim seemed to restate its question, and the embedding mapped
    "currency" to sums of money). Seen on a RealTime QA fit-half question."""
    from rag.grounding import names_in

    assert names_in("Officials in the U.S. and the U.K. met J.K. Rowling.") == {"us", "uk", "jk", "rowling"}
    question = "For the first time in 20 years, the U.S. dollar is nearly equal to which currency in value?"
    asks = QuestionAnalyzer(checker.tagger, embedder).run(question)
    assert asks.kinds == () and asks.noun == "currency"
    sources = checker.document_sentences(
        "Markets were calm on Tuesday. For the first time in 20 years, the U.S. dollar is nearly equal in value "
        "to the euro. Analysts expect the pound to fall further.")
    right, wrong = checker.check(["The U.S. dollar is nearly equal to the euro.",
                                  "The U.S. dollar is nearly equal to the yen."], sources, question=question, asks=asks)
    assert right.supported and right.answers and right.features["names_missing"] == 0.0, right
    assert not wrong.supported, wrong
    amount = QuestionAnalyzer(checker.tagger, embedder).run("How much money did the fund raise?")
    assert amount.kinds == ("money",)  # a sum is still a sum



def test_a_person_given_another_office_than_the_source_gives_them_is_not_supported(checker, embedder):
    """"The Russian President Mikhail Mishustin" has every word of "Prime Minister of the Russian
    Federation Mikhail Mishustin welcomed President Ilham Aliyev" (the title is Aliyev's), and the
    bundled model wrote it, cited, for a new question about the seed article. A person's office as the
    sources give it (read back from the name through the clause) must be the claim's; sources that
    name them without one contradict nothing."""
    from rag.grounding import offices_in

    question = "Which Russian official welcomed Aliyev?"
    asks = QuestionAnalyzer(checker.tagger, embedder).run(question)
    sources = checker.document_sentences(
        "Prime Minister of the Russian Federation Mikhail Mishustin welcomed President Ilham Aliyev. "
        "Then they posed for photos. Mishustin said trade grew by 16 percent. "
        "It is supervised by Deputy Prime Minister Aleksei Overchuk.")
    wrong, right, untitled, promoted, exact = checker.check([
        "The Russian official who welcomed Aliyev was the Russian President Mikhail Mishustin.",
        "The Russian official who welcomed Aliyev was Prime Minister Mikhail Mishustin.",
        "Mikhail Mishustin welcomed Aliyev.",
        "Prime Minister Aleksei Overchuk supervises it.",
        "Deputy Prime Minister Aleksei Overchuk supervises it."], sources, question=question, asks=asks)
    assert not wrong.supported and wrong.features["facts_missing"] > 0, wrong
    assert right.supported and untitled.supported, (right, untitled)
    assert not promoted.supported and exact.supported, (promoted, exact)  # a deputy is not the prime minister
    # The office is the evidence's, not the one sentence's: this one names Mishustin without his office.
    elsewhere, kept = checker.check(["Russian President Mishustin said trade grew by 16 percent.",
                                     "Prime Minister Mishustin said trade grew by 16 percent."], sources)
    assert not elsewhere.supported and kept.supported, (elsewhere, kept)
    text = ("Russian President Vladimir Putin and Prime Minister Mishustin met. Vice President Kamala Harris "
            "and Chinese Premier Li Keqiang spoke; former President Donald Trump did not.")
    assert offices_in(text, checker.tagger.tag([text])[0]) == [
        ("putin", "president", frozenset()), ("mishustin", "minister", frozenset({"prime"})),
        ("harris", "president", frozenset({"vice"})), ("keqiang", "minister", frozenset({"prime"})),
        ("trump", "president", frozenset({"former"}))]


SUPERMOON = """Harvest Moon coincides with lunar eclipse, supermoon

This year, the Harvest Moon is not only a full supermoon, it also coincides with another celestial event: a partial lunar eclipse.
Many skygazers regard the Harvest Moon as appearing bigger, brighter and more orange than a typical moon.
The eclipse will be visible across North America on Tuesday night.
"""


def test_a_claim_about_another_thing_than_asked_does_not_answer(tmp_path, ingest, open_index, settings):
    """"What is a supermoon?" drafted as a sentence about the Harvest Moon alone, which the article
    supports ("the Harvest Moon is ... a full supermoon, it also coincides with another celestial
    event"), is about another thing than asked and is not shown as the answer (found on fresh news: "A Harvest
    Moon is a rare celestial event that occurs when a full moon coincides. [1]"). A bare answer,
    which shares no word with its question, still is."""
    (tmp_path / "moon").mkdir()
    (tmp_path / "moon" / "moon.txt").write_text(SUPERMOON, encoding="utf-8")
    ingest(tmp_path / "moon")
    index = open_index(writable=False)
    answer = scripted(index, settings, "A Harvest Moon is a celestial event that coincides with a partial lunar eclipse.").run(
        "What is a supermoon?")
    assert not answer.answer.startswith("A Harvest Moon"), answer.answer
    on_topic = scripted(index, settings, "The Harvest Moon is a full supermoon that coincides with a partial lunar eclipse.").run(
        "What is a supermoon?")
    assert on_topic.answer.startswith("The Harvest Moon is a full supermoon") and on_topic.citations, on_topic.answer
    bare = scripted(index, settings, "North America.").run("Where will the eclipse be visible?")
    assert bare.answer.startswith("North America") and bare.citations, bare.answer


def test_a_figure_repeated_from_the_question_must_not_be_contradicted_by_the_source(checker):
    """A claim may repeat the question's "$1.3 billion" without its source stating it, but not cite a
    source about another jackpot: "$1.5 billion" in South Carolina is another draw (a RealTime QA
    answer, "The $1.3 billion Mega Millions jackpot was purchased ... in South Carolina. [1]")."""
    question = "In which state was the $1.3 billion Mega Millions lottery ticket purchased?"
    other = checker.document_sentences("A single ticket sold in South Carolina won the $1.5 billion Mega Millions "
                                       "jackpot in 2018, the lottery said.")
    same = checker.document_sentences("A single ticket sold in Illinois won the Mega Millions jackpot on Friday, "
                                      "the lottery said.")
    wrong, = checker.check(["The $1.3 billion Mega Millions ticket was purchased in South Carolina."], other,
                           question=question)
    right, = checker.check(["The $1.3 billion Mega Millions ticket was purchased in Illinois."], same,
                           question=question)
    assert not wrong.supported and wrong.features["facts_missing"] > 0, wrong
    assert right.supported, right


def test_a_number_in_words_before_a_hyphen_is_a_quantity():
    """"a seven-year deal" states 7 years as "a 7-year deal" does (a Big Ten claim's "seven-year",
    against its source's "12-year", went unread); "seventy-five" stays one number, "two-thirds" none."""
    seven, = quantities("a seven-year media rights deal")
    assert seven.value == 7 and seven.counted[0] == "year" and quantities_agree(seven, quantities("a 7-year deal")[0])
    assert [q.value for q in quantities("seventy-five people")] == [75]
    assert quantities("a two-thirds majority") == []


MEDALS = """Biden awards the Presidential Medal of Freedom to 17 people

President Joe Biden presented the Presidential Medal of Freedom to 17 people on Thursday, including actor Denzel Washington, gymnast Simone Biles and the late Senator John McCain.
Soccer star Megan Rapinoe and the late Apple co-founder Steve Jobs were also honoured at the White House ceremony.
"""
POSTPONED = "\nThe White House said actor Tom Hanks was not presented with the medal this week because his ceremony was postponed.\n"


def test_a_negated_question_is_not_answered_by_the_ones_it_excludes(tmp_path, ingest, open_index, settings):
    """"Which one of these people was not presented with the medal?" was answered with the sentence
    listing those who were, a cited wrong answer (RealTime QA, twice). Only a sentence saying who was
    not answers it; with none, the question is refused, and a name drafted from the list is rejected."""
    question = "Which one of these people was not presented with the Presidential Medal of Freedom?"
    analyzer = QuestionAnalyzer(EntityTagger())
    asks = analyzer.run(question)
    assert asks.negated and asks.noun == "people" and "person" in asks.kinds  # "which one of these people"
    assert not analyzer.run("He regrets not using his birth name. What is it?").negated  # another clause
    assert not analyzer.run("Why didn't the senators agree?").negated  # a reason, not a pick
    assert not analyzer.run("Which one of these?").negated  # no verb at all: the search for one ends
    (tmp_path / "listed").mkdir()
    (tmp_path / "listed" / "medals.txt").write_text(MEDALS, encoding="utf-8")
    ingest(tmp_path / "listed")
    index = open_index(writable=False)
    assert Answerer(index, settings, generator=load_generator(settings, "extractive")).run(question).refused
    drafted = scripted(index, settings, "Simone Biles was not presented with the medal.").run(question)
    assert drafted.refused or "Biles" not in drafted.answer, drafted.answer
    # The same list still answers the question it does answer.
    listed = Answerer(index, settings, generator=load_generator(settings, "extractive")).run(
        "Who presented the Presidential Medal of Freedom to 17 people?")
    assert not listed.refused and "Joe Biden" in listed.answer, listed.answer
    index.close()

    (tmp_path / "listed" / "medals.txt").write_text(MEDALS + POSTPONED, encoding="utf-8")
    ingest(tmp_path / "listed")
    index = open_index(writable=False)
    answer = Answerer(index, settings, generator=load_generator(settings, "extractive")).run(question)
    assert not answer.refused and "Tom Hanks" in answer.citations[0].quote, answer.answer
    check_quotes(answer, index)


def test_a_trimmed_quote_keeps_every_answer_its_sentence_holds(tmp_path, ingest, open_index, settings):
    """The quote is trimmed to the clause holding the answer, and that is all of the sentence's answers:
    "..., including actor Denzel Washington" cut the gymnast away, as "which raised £1m in less than 24
    hours" cut away the £7m raised since (RealTime QA, a cited wrong answer)."""
    (tmp_path / "listed").mkdir()
    (tmp_path / "listed" / "medals.txt").write_text(MEDALS, encoding="utf-8")
    ingest(tmp_path / "listed")
    index = open_index(writable=False)
    answer = Answerer(index, settings, generator=load_generator(settings, "extractive")).run(
        "Which gymnast was presented with the Presidential Medal of Freedom?")
    assert not answer.refused and "Simone Biles" in answer.citations[0].quote, answer.answer
    check_quotes(answer, index)


ANGELS = """date 2022-08-23 Anaheim, Aug. 23, BALLPARK WIRE

Team owner Arte Moreno announced Tuesday that he has "initiated a formal process" that could result in selling the franchise he purchased in 2003 for $184 million.

The Los Angeles Angels may soon be up for sale. The club has not reached the playoffs since 2014.

Season tickets for next year go on sale in October, the ticket office said.
"""


def test_a_rejected_draft_is_answered_by_a_second_quote_that_names_what_is_asked(tmp_path, ingest, open_index, settings):
    """After a rejected draft, the best sentence may set the scene without naming what is asked ("Team
    owner Arte Moreno announced ..." for "which team"); as an extractive answer does, the quote then
    takes the next sentence that names it (RealTime QA: the Angels, Mississippi, Ukraine's first lady)."""
    (tmp_path / "club").mkdir()
    (tmp_path / "club" / "angels.txt").write_text(ANGELS, encoding="utf-8")
    ingest(tmp_path / "club")
    index = open_index(writable=False)
    question = "Which baseball team's owner announced a formal process that could result in selling the franchise?"
    wrong = ChatGenerator(ScriptedLLM("The New York Yankees announced a formal sale process."), PromptBuilder(settings.llm), 64)
    answer = Answerer(index, settings, generator=wrong).run(question)
    assert not answer.refused and "Yankees" not in answer.answer, answer.answer
    assert len(answer.citations) == 2 and "Arte Moreno" in answer.citations[0].quote, answer.answer
    assert "Los Angeles Angels" in answer.citations[1].quote and "Season tickets" not in answer.answer
    check_quotes(answer, index)
    settings.answer.extractive_sentences = 1  # one quote at most, as configured
    assert len(Answerer(index, settings, generator=wrong).run(question).citations) == 1
