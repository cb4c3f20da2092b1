"""The evaluation harness: loaders (datasets), metrics, judges, runs (runner) and reports.

`evaluate(names, settings, ...)` is what `rag eval` calls: it runs each data set through the same
answer path and grounding checker as the product and writes results.json and report.html.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

from rag.config import Settings

DATASETS = ("realtimeqa", "clapnq", "qags")


def default_data_dir() -> Path:
    """$RAG_SHARED_DATA, else ../shared/data from the working directory."""
    return Path(os.environ.get("RAG_SHARED_DATA") or Path.cwd().parent / "shared" / "data")


def evaluate(names: list[str], settings: Settings, out_dir: Path, data_dir: Path | None = None,
             corpus: list[Path] | None = None, limit: int | None = None, llm: str | None = None,
             index: Path | None = None, judge_spec: str = "builtin", compare_dir: Path | None = None,
             k: int | None = None, progress: bool = True) -> dict:
    """Run the named data sets (or JSONL paths) and write the run folder; return the results."""
    from rag.embedding import Embedder
    from rag.evaluate import datasets, report, runner
    from rag.evaluate.judges import load_judge
    from rag.grounding import GroundingChecker

    data_dir = data_dir or default_data_dir()
    embedder = Embedder(settings.embedding)
    judge = load_judge(judge_spec, settings, GroundingChecker.from_settings(embedder, settings))
    options = runner.RunOptions(llm=llm, index=index, work_dir=None, k=k, progress=progress)
    results = {"started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "settings": {"datasets": names, "limit": limit, "llm": llm or settings.llm.backend, "judge": judge_spec,
                            "k": k or settings.answer.k, "index": str(index) if index else None},
               "datasets": {}}
    for name in names:
        if name == "qags":
            result = runner.run_qags(datasets.load_qags(data_dir, limit), judge, progress)
        else:
            if name == "realtimeqa":
                evalset = datasets.load_realtimeqa(data_dir, limit)
            elif name == "clapnq":
                evalset = datasets.load_clapnq(data_dir, limit)
            else:
                path = Path(name)
                if not path.is_file():
                    raise FileNotFoundError(f"{name}: not a data set ({', '.join(DATASETS)}) nor a JSONL file")
                if not corpus and not index:
                    raise ValueError(f"{name}: give its corpus with --corpus PATH (or an existing --index)")
                evalset = datasets.load_jsonl(path, corpus or [], limit)
            result = runner.run_questions(evalset, settings.copy(), embedder, judge, options)
        results["datasets"][Path(name).stem if name not in DATASETS else name] = result
    if compare_dir:
        baseline = json.loads((Path(compare_dir) / report.RESULTS).read_text(encoding="utf-8"))
        results["comparison"] = report.compare(results, baseline)
        results["compared_with"] = str(compare_dir)
    report.write_run(out_dir, results)
    return results
