"""The evaluation harness: metrics on hand-computed cases, loaders on small hand-made excerpts, judges,
an end-to-end `rag eval` on the seed set (results.json + report.html), --compare, and errors counted."""

from __future__ import annotations

import gzip
import json
import math

import pytest

from conftest import ROOT, SEEDS, run_cli, shared_data
from rag.evaluate import metrics as mx
from rag.evaluate.datasets import EvalItem, EvalSet, load_clapnq, load_jsonl, load_qags, load_realtimeqa
from rag.evaluate.judges import LLMJudge, parse_yes_no


# -- metrics ------------------------------------------------------------------------------------
def test_retrieval_metrics_on_a_hand_computed_ranking():
    ranked, gold = ["a", "b", "c", "d"], {"b", "d", "z"}
    assert mx.hit_at_k(ranked, gold, 1) == 0.0 and mx.hit_at_k(ranked, gold, 2) == 1.0
    assert mx.recall_at_k(ranked, gold, 4) == pytest.approx(2 / 3)
    assert mx.reciprocal_rank(ranked, gold) == 0.5 and mx.reciprocal_rank(ranked, {"q"}) == 0.0
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    ideal = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert mx.ndcg_at_k(ranked, gold, 10) == pytest.approx(dcg / ideal)


def test_answer_metrics_follow_squad_normalization():
    assert mx.exact_match("The 220,000 doses.", ["220000 doses"]) == 1.0
    assert mx.exact_match("about 220,000", ["220,000"]) == 0.0
    # prediction "about 220000" vs gold "220000": precision 1/2, recall 1 -> F1 2/3
    assert mx.token_f1("about 220,000", ["220,000", "something else"]) == pytest.approx(2 / 3)
    assert mx.token_f1("nothing", ["220,000"]) == 0.0
    assert mx.contains_answer("It grew by 16 percent [1].", ["16 percent"]) == 1.0
    # A possessive still contains the name; a name ending in "s" still matches either spelling.
    assert mx.contains_answer("Gustavo Petro will become Colombia’s first leftist leader.", ["Colombia"]) == 1.0
    assert mx.contains_answer("As Mississippi's capital city entered a fourth day", ["Mississippi"]) == 1.0
    assert mx.contains_answer("Dominos left Italy.", ["Domino’s"]) == 1.0
    assert mx.contains_answer("Colombians voted.", ["Colombia"]) == 0.0
    assert mx.contains_answer("Colombia voted.", [""]) == 0.0


def test_classification_metrics_by_hand():
    prf = mx.precision_recall_f1([True, True, False, False], [True, False, True, False])
    assert (prf["precision"], prf["recall"], prf["f1"], prf["count"]) == (0.5, 0.5, 0.5, 4)
    assert mx.roc_auc([0.9, 0.4, 0.4, 0.1], [True, True, False, False]) == pytest.approx((1 + 1 + 0.5 + 1) / 4)
    assert mx.roc_auc([0.3, 0.2], [True, True]) is None  # one class only: no AUC, no NaN
    assert mx.balanced_accuracy([True, False, False, False], [True, True, False, False]) == pytest.approx(0.75)
    assert mx.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert mx.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    from scipy.stats import spearmanr

    a, b = [0.1, 0.5, 0.5, 0.9, 0.3], [1, 3, 2, 5, 1]
    assert mx.spearman(a, b) == pytest.approx(spearmanr(a, b).statistic)
    assert mx.spearman([1, 1, 1], [1, 2, 3]) is None


def test_aggregates_carry_counts_and_skip_missing_values():
    assert mx.mean([1.0, None, 0.0]) == {"value": 0.5, "count": 2}
    assert mx.mean([None]) == {"value": None, "count": 0}
    assert mx.percentiles([10, 20, 30, 40, None]) == {"p50": 20, "p95": 40, "count": 4}


def test_quotes_match_gold_sentences_they_cover_or_lie_within():
    from rag.evaluate.runner import quote_matches_gold

    gold = ["The prime minister is the head of government and advises the Crown on its executive powers ."]
    assert quote_matches_gold("The prime minister is the head of government and advises the Crown.", gold)
    assert quote_matches_gold("is the head of government and advises the Crown", gold)  # a clause inside it
    assert not quote_matches_gold("the head", gold)  # too short to say which sentence it is
    assert not quote_matches_gold("The monarch is represented by the governor general.", gold)


def test_choice_metrics_count_right_wrong_and_the_ceiling():
    from rag.evaluate.runner import aggregate

    base = {"split": "", "answerable": True, "sentences": [], "verdicts": [], "search_ms": 1.0, "timings": {}}
    rows = [dict(base, choice_in_answer=1.0, cited_but_wrong=0.0, choice_in_passages=1.0),
            dict(base, choice_in_answer=0.0, cited_but_wrong=1.0, choice_in_passages=1.0),
            dict(base, choice_in_answer=0.0, cited_but_wrong=0.0, choice_in_passages=0.0, refused=True)]
    for row in rows:
        row.setdefault("refused", False)
    answer = aggregate(rows, 3, 0)["answer"]
    assert answer["choice_in_answer"] == {"value": 0.3333, "count": 3}
    assert answer["cited_but_wrong"] == {"value": 0.3333, "count": 3}
    assert answer["choice_in_passages"] == {"value": 0.6667, "count": 3}


# -- loaders (small hand-made excerpts in the shared data's formats) ----------------------------------
@pytest.fixture
def data_dir(tmp_path):
    rtqa = tmp_path / "realtimeqa"
    rtqa.mkdir()
    questions = [
        {"question_id": "20220101_0", "question_date": "2022/01/01", "question_source": "CNN",
         "question_sentence": "Which city opened a new harbour bridge?", "choices": ["Oslo", "Riga", "Porto", "Gdansk"],
         "answer": ["1"], "evidence": 'The <a href="https://www.example.com/bridge/">bridge</a> opened.',
         "retrieved_doc_ids": ["d1", "d2"]},
        {"question_id": "20220101_1", "question_date": "2022/01/01", "question_source": "CNN",
         "question_sentence": "How many lanterns were lit?", "choices": ["12", "1,200", "120", "12,000"],
         "answer": ["1"], "evidence": "", "retrieved_doc_ids": ["d2", "d3"]},
        {"question_id": "20220101_2", "question_sentence": "Unused?", "choices": ["a", "b", "c", "d"], "answer": ["0"],
         "evidence": "", "retrieved_doc_ids": []},
    ]
    (rtqa / "questions_2022_2024.jsonl").write_text("\n".join(json.dumps(q) for q in questions) + "\n")
    articles = [
        {"doc_id": "d1", "url": "https://example.com/bridge", "title": "Bridge opens", "publish_date": "2022/01/01",
         "text": "A new harbour bridge opened in Riga on Friday."},
        {"doc_id": "d2", "url": "https://example.com/lanterns", "title": "Lanterns", "publish_date": "2022/01/02",
         "text": "Volunteers lit 1,200 lanterns along the river."},
        {"doc_id": "d3", "url": "https://example.com/other", "title": "Other", "publish_date": "", "text": "Unrelated news."},
        {"doc_id": "d9", "url": "", "title": "Not retrieved", "publish_date": "", "text": "Never pooled."},
    ]
    with gzip.open(rtqa / "articles_2022_2024.jsonl.gz", "wt") as handle:
        handle.write("\n".join(json.dumps(a) for a in articles) + "\n")
    clapnq = tmp_path / "clapnq"
    clapnq.mkdir()
    passage = {"title": "Forecasting", "text": "Seasonality repeats every year. Averages give the seasonal index.",
               "sentences": ["Seasonality repeats every year.", "Averages give the seasonal index."]}
    (clapnq / "dev_answerable_a.jsonl").write_text(json.dumps({
        "id": "1", "input": "what uses averages", "passages": [passage],
        "output": [{"answer": "Seasonality uses averages.", "selected_sentences": ["Averages give the seasonal index."]}]}) + "\n")
    (clapnq / "dev_unanswerable_a.jsonl").write_text(json.dumps({
        "id": "2", "input": "who invented forecasting", "passages": [passage],
        "output": [{"answer": "", "selected_sentences": []}]}) + "\n")
    qags = tmp_path / "qags"
    qags.mkdir()
    (qags / "mturk_cnndm.jsonl").write_text(json.dumps({"article": "The cat sat on the mat.", "summary_sentences": [
        {"sentence": "A cat sat.", "responses": [{"response": "yes"}, {"response": "yes"}, {"response": "no"}]}]}) + "\n")
    return tmp_path


def test_realtimeqa_loader_pools_articles_and_finds_gold(data_dir):
    evalset = load_realtimeqa(data_dir)
    assert [item.id for item in evalset.items] == ["20220101_0", "20220101_1"]  # no retrieved articles: skipped
    assert sorted(d.doc_id for d in evalset.documents) == ["d1", "d2", "d3"]
    first, second = evalset.items
    assert first.gold_doc_ids == ["d1"]  # linked by the evidence URL (www. and trailing slash ignored)
    assert second.gold_doc_ids == ["d2"]  # contains the right choice's text
    assert first.choices[first.answer_index] == "Riga" and first.answers == ["Riga"]


def test_clapnq_and_qags_loaders(data_dir):
    evalset = load_clapnq(data_dir)
    answerable, unanswerable = evalset.items
    assert answerable.answerable and not unanswerable.answerable
    assert answerable.gold_sentences == ["Averages give the seasonal index."] and unanswerable.gold_doc_ids == []
    assert len(evalset.documents) == 2 and evalset.documents[0].source == "ClapNQ"
    [summary] = load_qags(data_dir)
    assert summary.sentences == ["A cat sat."] and summary.yes_share == [pytest.approx(2 / 3)]


def test_jsonl_loader_names_the_bad_line(tmp_path):
    path = tmp_path / "set.jsonl"
    path.write_text('{"question": "ok?", "answers": ["yes"]}\n{"answers": ["no question"]}\n')
    with pytest.raises(ValueError, match=r"set.jsonl:2: a question"):
        load_jsonl(path, [])


# -- judges -------------------------------------------------------------------------------------
def test_yes_no_parsing_is_strict():
    assert parse_yes_no("Yes.") == 1.0 and parse_yes_no(" no, it is not") == 0.0
    assert parse_yes_no("The claim is supported") is None and parse_yes_no("yesterday") is None


def test_llm_judge_with_the_bundled_model_reports_parse_failures(settings):
    settings.llm.llamacpp.threads = 1
    judge = LLMJudge(settings, "llamacpp")
    scores = judge.scores(["Volunteers lit 1,200 lanterns.", "The bridge is in Oslo."],
                          "Volunteers lit 1,200 lanterns along the river.")
    assert len(scores) == 2 and judge.replies == 2
    assert all(s in (0.0, 1.0) or s is None for s in scores)
    assert judge.parse_failures == sum(s is None for s in scores)


def test_nli_judge_loads_a_local_cross_encoder(tmp_path):
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    from rag.evaluate.judges import NLIJudge

    words = "the a cat sat on mat dog ran lanterns lit river".split()
    (tmp_path / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    labels = {0: "contradiction", 1: "entailment", 2: "neutral"}
    config = BertConfig(vocab_size=5 + len(words), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=64, num_labels=3, id2label=labels,
                        label2id={v: k for k, v in labels.items()})
    BertForSequenceClassification(config).save_pretrained(tmp_path / "nli")
    BertTokenizer(str(tmp_path / "vocab.txt")).save_pretrained(tmp_path / "nli")
    judge = NLIJudge(str(tmp_path / "nli"))
    assert judge.entailment == 1 and judge.name.startswith("nli:")
    scores = judge.scores(["the cat sat", "the dog ran"], "the cat sat on the mat")
    assert len(scores) == 2 and all(0.0 <= s <= 1.0 for s in scores)
    with pytest.raises(ValueError, match="cannot load NLI cross-encoder"):
        NLIJudge(str(tmp_path / "missing"))


# -- runs -----------------------------------------------------------------------------------------
def test_rag_eval_on_the_seed_set_writes_results_and_report_and_compares(tmp_path):
    first, second = tmp_path / "run1", tmp_path / "run2"
    seed_set = ROOT / "eval" / "sets" / "seed_qa.jsonl"
    result = run_cli("eval", str(seed_set), "--corpus", str(SEEDS), "--llm", "extractive", "--out", str(first),
                     "--no-progress", timeout=600, process=True)  # the console command once, the rest in-process
    assert result.returncode == 0, result.stderr
    results = json.loads((first / "results.json").read_text())
    metrics = results["datasets"]["seed_qa"]["metrics"]
    rows = results["datasets"]["seed_qa"]["rows"]
    assert metrics["questions"] == 20 and metrics["errors"] == 0 and len(rows) == 20
    assert metrics["retrieval"]["hit@1"] == {"value": 1.0, "count": 14}  # one article: every answerable finds it
    refusal = metrics["refusal"]
    assert refusal["count"] == 20 and refusal["tp"] + refusal["fn"] == 6  # six unanswerable questions
    assert refusal["tp"] == sum(r["refused"] and not r["answerable"] for r in rows)
    assert metrics["citations"]["precision"]["count"] > 0 and metrics["answer"]["token_f1"]["count"] == 14
    assert {"question", "retrieved_doc_ids", "answer", "citations", "verdicts", "timings"} <= set(rows[0])
    report = (first / "report.html").read_text()
    assert "<img" in report and "hit@k" in report and "seed_qa" in report

    result = run_cli("eval", str(seed_set), "--corpus", str(SEEDS), "--llm", "extractive", "--k", "1",
                     "--out", str(second), "--compare", str(first), "--no-progress", timeout=600)
    assert result.returncode == 0, result.stderr
    assert "seed_qa:" in result.stdout and "->" in result.stdout
    comparison = json.loads((second / "results.json").read_text())["comparison"]["seed_qa"]
    assert comparison["retrieval.hit@1"]["delta"] == 0.0 and "answer.token_f1" in comparison


def test_a_question_that_errors_is_counted_and_listed(settings, embedder):
    from rag.evaluate.judges import BuiltinJudge
    from rag.evaluate.runner import RunOptions, run_questions
    from rag.grounding import GroundingChecker

    items = [EvalItem(id="ok", question="How many doses of Sputnik V were delivered?", answers=["220,000"]),
             EvalItem(id="bad", question="   "),  # the retriever rejects an empty query
             EvalItem(id="ok2", question="What did Mishustin say about trade turnover?")]
    evalset = EvalSet("mini", items, corpus_paths=[SEEDS])
    settings.llm.backend = "extractive"
    judge = BuiltinJudge(GroundingChecker(embedder, settings.answer.support_threshold))
    result = run_questions(evalset, settings, embedder, judge, RunOptions(progress=False))
    assert result["questions"] == 3 and result["answered_without_error"] == 2
    assert [e["id"] for e in result["errors"]] == ["bad"] and "empty" in result["errors"][0]["error"]
    assert result["metrics"]["errors"] == 1
    assert "NaN" not in json.dumps(result["metrics"])


@pytest.mark.shared_data
def test_qags_and_clapnq_from_the_shared_data(tmp_path):
    shared_data("qags/mturk_cnndm.jsonl")
    shared_data("clapnq/dev_answerable_a.jsonl")
    result = run_cli("eval", "qags", "clapnq", "--limit", "8", "--llm", "extractive", "--out", str(tmp_path / "run"),
                     "--no-progress", timeout=900)
    assert result.returncode == 0, result.stderr
    datasets = json.loads((tmp_path / "run" / "results.json").read_text())["datasets"]
    qags = datasets["qags"]["metrics"]["all"]
    assert qags["summaries"] == 8 and qags["summary_spearman"] is not None and qags["sentences"] > 8
    clapnq = datasets["clapnq"]["metrics"]
    assert clapnq["questions"] == 8 and clapnq["refusal"]["count"] == 8 and clapnq["errors"] == 0


def test_multiple_choice_picks_the_choice_the_passages_state(embedder):
    """The fitted scorer over real checker features: the choice a sentence states wins over choices
    named only in part or only in an old article, and a question no passage answers scores zeros."""
    from rag.evaluate.choices import CHOICE_FEATURES, choice_features, pick
    from rag.grounding import GroundingChecker
    from rag.types import Hit

    def hit(rank, text, date):
        return Hit(rank, f"d{rank}#0", f"d{rank}", "Harbour news", date, "Wire", "", text, 0, len(text), 1.0 / rank)

    hits = [hit(1, "The new harbour bridge was opened in Riga on Friday by the mayor.", "2022-01-07"),
            hit(2, "Crowds gathered in Riga to watch the bridge open.", "2022-01-08"),
            hit(3, "Porto opened a harbour bridge in 2019, and Gdansk plans one.", "2019-05-01")]
    checker = GroundingChecker(embedder)
    question, choices = "Which city opened a new harbour bridge this week?", ["Oslo", "Riga", "Porto", "Gdansk"]
    features = choice_features(question, choices, hits, checker, as_of="2022-01-08")
    column = dict(zip(CHOICE_FEATURES, features.T))
    assert list(column["stated"]) == [0.0, 1.0, 1.0, 1.0]
    assert column["stated_share"][1] > column["stated_share"][2]  # two passages state Riga, one Porto
    assert column["stated_recency"][1] > column["stated_recency"][2] > 0  # this week, against 2019
    assert pick(features)[0] == 1
    empty = choice_features(question, choices, [], checker, as_of="2022-01-08")
    assert empty.shape == (4, len(CHOICE_FEATURES)) and not empty.any() and pick(empty)[0] == 0
