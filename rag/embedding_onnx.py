"""The embedding model on an exported graph: ONNX Runtime (`embedding.backend = onnx`) or OpenVINO
(`openvino`, in bf16 where the CPU computes it natively), each optionally int8 by `embedding.quantize`
(auto, the default: int8 weights where OpenVINO has no native bf16 and would run f32).

The transformer of a sentence-transformers model folder is exported once, locally, from the model's
own weights (torch.onnx.export to ONNX, which both runtimes read) and cached. int8 on ONNX Runtime is
its dynamic quantisation of the MatMul weights and activations, per channel; on OpenVINO it is NNCF's
int8 compression of the weights alone (per output channel, asymmetric), saved once as OpenVINO IR
beside the ONNX file, with activations kept in f32/bf16. Nothing is downloaded. Pooling (mean or CLS,
as the model's 1_Pooling/config.json says) and normalising happen here in numpy, and texts are encoded
in batches of similar length, so short texts do not pay for a long one's padding.

Measured against torch fp32 on 2,000 RealTime QA chunks (bench/embedding_backends.py, results in
bench/results/embedding_backends*.json, two CPUs with native bf16 and a Zen 3 with AVX2 only): OpenVINO
bf16 2.9-3.5x the speed with cosine 0.99998 and 99% of each query's top-10 neighbours the same;
OpenVINO int8 weights: cosine 0.9995, 96-97% of the neighbours (activations stay unquantised), 1.3x
OpenVINO f32 on the Intel Xeon but slower than bf16, and no faster than f32 on the Zen 3; ONNX fp32 the
same vectors, 0.8-1.7x; ONNX int8 1.3-2.8x but only 86-87% of the top-10 neighbours the same, below the
quality bar, so never a default. On the Zen 3 every f32 runtime is within 5% of torch, which reaches
65% of that CPU's measured f32 matmul rate.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from rag.cpus import usable_cpus

EXPORT_VERSION = 1  # bump when the export below changes: cached files of another version are not reused
OPSET = 17


class ExportedEncoder:
    """What rag.embedding.Embedder needs of a model (encode, tokenizer, max_seq_length, dimension), on
    an exported graph run by `run(inputs) -> token embeddings`."""

    takes_token_ids = True  # encode(..., token_ids=) skips tokenizing texts whose ids are given

    def __init__(self, model_path: str, run: Callable[[dict], np.ndarray], input_names: set[str]):
        from transformers import AutoTokenizer

        folder = Path(model_path)
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder))
        self.max_seq_length = int(_json(folder / "sentence_bert_config.json").get("max_seq_length")
                                  or min(self.tokenizer.model_max_length, 512))
        pooling = _json(folder / "1_Pooling" / "config.json")
        self.pooling = "cls" if pooling.get("pooling_mode_cls_token") else "mean"
        self.run, self.inputs = run, input_names
        self.precision = "f32"  # what the runtime computes in (load_openvino sets bf16 when it uses it)
        self.quantize = "none"  # the weights as they run: none or int8 (the loaders set it)
        self.shape_bucket = 1  # pad a lone text to a multiple of this many tokens (1: no padding)
        # Several batches at once, each on its own stream (see load_openvino): start(feed, done) starts
        # one, done(hidden) is called when it is computed; wait() returns once all have been.
        self.parallel: ParallelRunner | None = None
        self.dimension = int(pooling.get("word_embedding_dimension") or 0)
        if not self.dimension:
            self.dimension = int(self.encode(["dimension"]).shape[1])

    def get_sentence_embedding_dimension(self) -> int:
        return self.dimension

    def encode(self, texts: list[str], batch_size: int = 32, normalize_embeddings: bool = True,
               convert_to_numpy: bool = True, show_progress_bar: bool = False, side_by_side: bool = False,
               token_ids: Sequence[list[int] | None] | None = None) -> np.ndarray:
        """Vectors in the order of `texts`; batches are formed from texts sorted by length, and run side by
        side (`parallel`) where asked and available. `token_ids` (None, or per text its input ids from
        this model's tokenizer, or None) saves tokenizing a batch whose texts all have them."""
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        batches = [order[start:start + batch_size] for start in range(0, len(texts), batch_size)]
        parallel = self.parallel if side_by_side and len(batches) > 1 else None
        try:
            self._run_batches(texts, batches, out, parallel, token_ids)
        finally:  # every batch started is finished before `out` is returned or abandoned
            if parallel is not None:
                parallel.wait()
        if normalize_embeddings:
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out

    def _run_batches(self, texts: list[str], batches: list[np.ndarray], out: np.ndarray,
                     parallel: ParallelRunner | None, token_ids: Sequence[list[int] | None] | None) -> None:
        """Pool each batch's token embeddings into its rows of `out`."""
        for chosen in batches:
            # A lone text (a query) is padded to a multiple of `shape_bucket` tokens so that most queries
            # share an input shape (see load_openvino). Never past the model's length.
            bucket = self.shape_bucket if len(chosen) == 1 and self.max_seq_length % self.shape_bucket == 0 else None
            given = [token_ids[i] for i in chosen] if token_ids is not None else []
            if given and all(ids is not None and len(ids) <= self.max_seq_length for ids in given):
                batch = self._padded(given, bucket)
            else:
                batch = self.tokenizer([texts[i] for i in chosen], padding=True, truncation=True,
                                       max_length=self.max_seq_length, return_tensors="np", pad_to_multiple_of=bucket)
            feed = {name: batch[name].astype(np.int64) for name in self.inputs if name in batch}
            if "token_type_ids" in self.inputs and "token_type_ids" not in feed:
                feed["token_type_ids"] = np.zeros_like(feed["input_ids"])

            def store(hidden: np.ndarray, chosen=chosen, mask=batch["attention_mask"]) -> None:
                out[chosen] = self._pool(hidden, mask)

            if parallel is not None:  # the next batch is tokenized while this one runs
                parallel.start(feed, store)
            else:
                store(self.run(feed))

    def _padded(self, given: list[list[int]], bucket: int | None) -> dict[str, np.ndarray]:
        """The arrays the tokenizer would return for texts whose ids are `given`: padded as it pads."""
        width = max(len(ids) for ids in given)
        if bucket:
            width = min(-(-width // bucket) * bucket, self.max_seq_length)
        input_ids = np.full((len(given), width), self.tokenizer.pad_token_id or 0, dtype=np.int64)
        mask = np.zeros((len(given), width), dtype=np.int64)
        left = self.tokenizer.padding_side == "left"
        for row, ids in enumerate(given):
            place = slice(width - len(ids), width) if left else slice(0, len(ids))
            input_ids[row, place], mask[row, place] = ids, 1
        return {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": np.zeros_like(input_ids)}

    def _pool(self, hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
        if self.pooling == "cls":
            return hidden[:, 0]
        weights = mask[..., None].astype(np.float32)
        return (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)


class ParallelRunner:
    """Batches run side by side on an OpenVINO model compiled with one stream per core.

    One request spread over every core waits, at each layer, for the slowest core: in an ingest a core
    that also chunks and writes for a moment stalls the other (bench/ingest_throughput.py measured the
    encoder 6-8% slower there than alone, for ~4% of the cores' time spent beside it). One batch per
    core does not wait on the others, and a bare encode is faster too (a probe on 3,060 chunks, 2-core
    AMD EPYC: 203 -> 212 chunks/s alone, 190 -> 207 beside a thread taking 5% of a core). Compiled on
    first use: a query never needs it (rag.embedding.SIDE_BY_SIDE_BATCHES)."""

    def __init__(self, compile_model: Callable[[], object], streams: int):
        self.compile_model, self.streams = compile_model, streams
        self._queue = None
        self._lock = threading.Lock()
        self._failures: list[BaseException] = []

    def start(self, feed: dict, done: Callable[[np.ndarray], None]) -> None:
        if self._queue is None:
            import openvino

            self._queue = openvino.AsyncInferQueue(self.compile_model(), self.streams)
            self._queue.set_callback(self._finished)
        self._queue.start_async(feed, done)

    def _finished(self, request, done) -> None:
        try:  # runs on an OpenVINO thread: an error is raised in the caller by wait()
            done(request.get_output_tensor(0).data)
        except BaseException as exc:  # noqa: BLE001
            with self._lock:
                self._failures.append(exc)

    def wait(self) -> None:
        """Return once every batch started has been computed; raise the first error of their callbacks."""
        if self._queue is not None:
            self._queue.wait_all()
        with self._lock:
            failures, self._failures = self._failures, []
        if failures:
            raise failures[0]


def load_onnx(model_path: str, settings) -> ExportedEncoder:
    """The model on ONNX Runtime, exporting (and quantising) it first when not cached."""
    import onnxruntime

    quantize = "int8" if settings.quantize == "int8" else "none"  # auto: its int8 drifts past the bar
    onnx_file = exported_model(Path(model_path), quantize, settings.cache_dir)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = settings.threads or usable_cpus()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = onnxruntime.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
    encoder = ExportedEncoder(model_path, lambda feed: session.run(None, feed)[0], {i.name for i in session.get_inputs()})
    encoder.quantize = quantize
    return encoder


def load_openvino(model_path: str, settings) -> ExportedEncoder:
    """The model on OpenVINO's CPU plugin, in bf16 where the CPU computes it natively and faster than
    f32 (unless embedding.precision = f32), with int8 weights where asked, or on quantize = auto where it
    runs f32 and int8 weights are timed faster; the model is exported (and compressed) first when not cached."""
    import openvino

    core = openvino.Core()
    model_file = exported_model(Path(model_path), "none", settings.cache_dir)
    precision = openvino_precision(settings.precision, core, model_file, settings.cache_dir)
    quantize = openvino_quantize(settings.quantize, settings.precision, precision)
    int8_file = int8_weights(model_file, settings) if quantize == "int8" else None
    model_file, quantize = (int8_file, "int8") if int8_file else (model_file, "none")
    if not runs_safely(model_file, precision, settings.cache_dir):
        raise RuntimeError(f"OpenVINO {precision} inference crashed in a probe process on this CPU")
    config = {"INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY"}
    cores = settings.threads or usable_cpus()
    if settings.threads or cores < (os.cpu_count() or 1):  # OpenVINO sees the affinity, not a CPU quota
        config["INFERENCE_NUM_THREADS"] = cores
    compiled = core.compile_model(core.read_model(str(model_file)), "CPU", config)
    request, output, lock = compiled.create_infer_request(), compiled.output(0), threading.Lock()

    def run(feed: dict) -> np.ndarray:
        with lock:  # one request object: callers are serialised by the Embedder's lock anyway
            return np.array(request.infer(feed)[output])

    encoder = ExportedEncoder(model_path, run, {name for port in compiled.inputs for name in port.get_names()})
    encoder.precision, encoder.quantize = precision, quantize  # what it runs, for the index manifest
    # OpenVINO re-prepares its kernels for each new input shape: queries padded to a multiple of 16
    # tokens mostly share one (bench/query_latency.py: p50 2.94 -> 2.24 ms in bf16, 3.39 -> 3.00 ms with
    # int8 weights on f32; the mask keeps the vector, cosine 0.9999999). ONNX Runtime has no such cost
    # and would only pay for the padding.
    encoder.shape_bucket = 16
    if cores > 1:  # an ingest's encode calls (rag.embedding.SIDE_BY_SIDE_BATCHES): one stream per core
        streams = {"INFERENCE_PRECISION_HINT": precision, "NUM_STREAMS": cores, "INFERENCE_NUM_THREADS": cores}
        encoder.parallel = ParallelRunner(lambda: core.compile_model(core.read_model(str(model_file)), "CPU", streams), cores)
    return encoder


def int8_weights(model_file: Path, settings) -> Path | None:
    """The int8-weight model to run, or None for the f32 weights: on quantize = auto, where compressing
    fails (with a one-line notice) or the int8 weights are not timed faster here; they drift a little
    (cosine 0.9995), and some CPUs run them slower than f32 weights (0.86-0.93x on a Zen 3 with AVX2
    only). Asked for explicitly (quantize = int8), a failure is raised and nothing is timed."""
    try:
        compressed = compressed_model(model_file)
    except Exception as exc:  # noqa: BLE001 - NNCF missing or failing: the f32 weights still work
        if settings.quantize == "int8":
            raise
        # auto: the f32 weights are as good, only slower; say once why they are used
        print(f"notice: embedding.quantize = auto could not compress to int8 ({' '.join(str(exc).split())[:200]}); "
              "using the f32 weights", file=sys.stderr)
        return None
    if settings.quantize == "auto" and int8_speedup(model_file, compressed, settings.cache_dir) < INT8_MIN_SPEEDUP:
        return None
    return compressed


# Run in a child process: a CPU that advertises instructions it cannot execute (some VMs do, for
# AMX) kills the process with SIGILL, which no exception handler sees.
PROBE = """
import sys, numpy, openvino
core = openvino.Core()
compiled = core.compile_model(core.read_model(sys.argv[1]), "CPU", {"INFERENCE_PRECISION_HINT": sys.argv[2]})
feed = {name: numpy.ones((1, 8), dtype=numpy.int64) for port in compiled.inputs for name in list(port.get_names())[:1]}
compiled.create_infer_request().infer(feed)
"""


# Timed in a child process too (it compiles the model twice), once per CPU: a CPU can advertise bf16
# and still run it far slower than f32. Under a oneDNN ISA cap (ONEDNN_MAX_CPU_ISA=AVX512_CORE_VNNI,
# a bf16-less Xeon) OpenVINO's capability check still answers BF16 and bf16 ran at 2.9 chunks/s
# against 64.7 in f32; natively here bf16 is 2.5x f32. Int8 weights are timed the same way: they run
# 1.2-1.5x faster than f32 weights on AVX-512 CPUs, and 0.86-0.93x on a Zen 3 with AVX2 only.
SPEED_PROBE = """
import sys, time, numpy, openvino
core = openvino.Core()
# f32 against argv[2]: "bf16" (the same model in bf16) or the file of its int8-weight model (run in f32)
runs = {"f32": (sys.argv[1], "f32"), "other": (sys.argv[1], "bf16") if sys.argv[2] == "bf16" else (sys.argv[2], "f32")}
requests, feeds, best = {}, {}, {}
for run, (model_file, precision) in runs.items():
    compiled = core.compile_model(core.read_model(model_file), "CPU", {"INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY"})
    requests[run] = compiled.create_infer_request()
    # An ingest-sized batch (8 texts of 128 tokens, ~30 ms here): a tiny one is timed mostly in overhead
    feeds[run] = {name: numpy.ones((8, 128), dtype=numpy.int64) for port in compiled.inputs for name in list(port.get_names())[:1]}
    requests[run].infer(feeds[run])
# Alternated, so that other work on the machine slows both alike, and the fastest of each kept.
for _ in range(10):
    for run in runs:
        started = time.perf_counter()
        requests[run].infer(feeds[run])
        best[run] = min(best.get(run, 1e9), time.perf_counter() - started)
print(best["f32"] / best["other"])
"""
BF16_MIN_SPEEDUP = 1.2  # bf16 drifts a little (cosine 0.99998): worth it only when clearly faster
INT8_MIN_SPEEDUP = 1.1  # int8 weights pass the drift bar but keep fewer neighbours (0.96-0.97 of the top 10)


def _probed(script: str, model_file: Path, argument: str, cache_dir: str = "") -> str | None:
    """What `script` prints run in a child process with the model file and `argument`, None when it
    fails or hangs; run once, the outcome cached per CPU, OpenVINO version, model file, argument and script."""
    import subprocess

    import openvino

    cpu = Path("/proc/cpuinfo").read_text(errors="replace") if Path("/proc/cpuinfo").exists() else ""
    flags = next((line for line in cpu.splitlines() if line.startswith("flags")), "")
    isa_cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "")  # changes what runs and how fast as much as the CPU does
    key = hashlib.sha256(f"{flags}|{isa_cap}|{openvino.__version__}|{model_file}|{argument}|{script}".encode()).hexdigest()[:16]
    verdict = cache_root(cache_dir) / "probes" / f"openvino-{key}"
    if not verdict.is_file():
        try:
            done = subprocess.run([sys.executable, "-c", script, str(model_file), argument], capture_output=True,
                                  text=True, timeout=300)
            outcome = f"ok\n{done.stdout.strip()}" if done.returncode == 0 else "failed"
        except subprocess.TimeoutExpired:
            outcome = "failed"
        _atomic(verdict, lambda temporary: temporary.write_text(outcome))
    status, _, printed = verdict.read_text().partition("\n")
    return printed.strip() if status.strip() == "ok" else None


def runs_safely(model_file: Path, precision: str, cache_dir: str = "") -> bool:
    """Whether OpenVINO runs this model at this precision on this CPU (probed once in a child process)."""
    return _probed(PROBE, model_file, precision, cache_dir) is not None


def bf16_speedup(model_file: Path, cache_dir: str = "") -> float:
    """How many times faster OpenVINO runs this model in bf16 than in f32 here (timed once in a child
    process); 0 when either does not run."""
    return _speedup(model_file, "bf16", cache_dir)


def int8_speedup(model_file: Path, int8_file: Path, cache_dir: str = "") -> float:
    """How many times faster OpenVINO runs the model's int8-weight file than its f32 one, both in f32
    (timed once in a child process); 0 when either does not run."""
    return _speedup(model_file, str(int8_file), cache_dir)


def _speedup(model_file: Path, other: str, cache_dir: str) -> float:
    printed = _probed(SPEED_PROBE, model_file, other, cache_dir)
    try:
        return float(printed) if printed else 0.0
    except ValueError:
        return 0.0


def openvino_precision(setting: str, core=None, model_file: Path | None = None, cache_dir: str = "") -> str:
    """bf16 when asked for, or on auto where the CPU has native bf16 (measured drift: cosine 0.99998)
    and, timed on `model_file`, runs it at least BF16_MIN_SPEEDUP times faster than f32; else f32."""
    if setting in ("f32", "bf16"):
        return setting
    if core is None:
        import openvino

        core = openvino.Core()
    if "BF16" not in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        return "f32"
    return "bf16" if model_file is None or bf16_speedup(model_file, cache_dir) >= BF16_MIN_SPEEDUP else "f32"


def openvino_quantize(setting: str, precision_setting: str, precision: str) -> str:
    """auto: int8 weights where OpenVINO runs f32 because the CPU has no native bf16 (1.33x f32 on the
    Intel Xeon with cosine 0.9994 and 96% of the top-10 neighbours kept, bench/embedding_backends.py;
    load_openvino still times them against f32 weights on this CPU); where bf16 runs, it is faster than
    int8 and closer, and a user who set precision = f32 asked for exact vectors."""
    if setting != "auto":
        return setting
    return "int8" if precision_setting == "auto" and precision == "f32" else "none"


def exported_model(folder: Path, quantize: str, cache_dir: str = "") -> Path:
    """The cached ONNX file for a model folder (fp32, or int8 from it), made once and atomically."""
    if not (folder / "config.json").is_file():
        raise ValueError(f"{folder} is not a model folder (the onnx backend needs a local sentence-transformers folder)")
    target = cache_root(cache_dir) / model_key(folder)
    fp32 = target / "model.onnx"
    if not fp32.is_file():
        _atomic(fp32, lambda temporary: _export(folder, temporary))
    if quantize == "none":
        return fp32
    int8 = target / "model.int8.onnx"
    if not int8.is_file():
        _atomic(int8, lambda temporary: _quantize(fp32, temporary))
    return int8


# NNCF sends usage telemetry through openvino_telemetry unless a consent file says no; with that module
# unimportable it uses its own no-op stub. Run in a child process, once per model: nothing of NNCF
# (or of that guard) stays in the process that serves questions.
COMPRESS = """
import sys, warnings
sys.modules["openvino_telemetry"] = None
import nncf, openvino
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    model = nncf.compress_weights(openvino.Core().read_model(sys.argv[1]), mode=nncf.CompressWeightsMode.INT8_ASYM)
openvino.save_model(model, sys.argv[2])
"""


def compressed_model(onnx_file: Path) -> Path:
    """OpenVINO IR of the exported model with its weights compressed to int8 by NNCF, made once beside
    the ONNX file: the .xml and .bin are written into a temporary folder renamed into place whole, so a
    reader never finds one without the other."""
    import importlib.util
    import shutil
    import subprocess
    import sys

    target = onnx_file.parent / "openvino-int8"
    xml = target / "model.xml"
    if xml.is_file():
        return xml
    if importlib.util.find_spec("nncf") is None:
        raise RuntimeError('embedding.quantize = int8 on openvino needs NNCF (pip install nncf)')
    temporary = Path(tempfile.mkdtemp(dir=onnx_file.parent, prefix="openvino-int8.", suffix=".tmp"))
    try:
        done = subprocess.run([sys.executable, "-c", COMPRESS, str(onnx_file), str(temporary / "model.xml")],
                              capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            raise RuntimeError(f"NNCF weight compression failed: {done.stderr.strip().splitlines()[-1:]}")
        try:
            os.replace(temporary, target)
        except OSError:  # another process made it first: theirs is as good
            if not xml.is_file():
                raise
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return xml


def cache_root(cache_dir: str = "") -> Path:
    base = Path(cache_dir) if cache_dir else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "newsrag"
    return base / "embeddings"


def model_key(folder: Path) -> str:
    """Names the export by what it was made from: the model's config and weights, and this code's version."""
    digest = hashlib.sha256(f"{EXPORT_VERSION}:{OPSET}".encode())
    for name in sorted(p.name for p in folder.iterdir() if p.is_file()):
        path = folder / name
        stat = path.stat()
        digest.update(f"{name}:{stat.st_size}:{int(stat.st_mtime)}".encode())
    return f"{folder.name}-{digest.hexdigest()[:16]}"


def _atomic(path: Path, write) -> None:
    """Write through a temporary file in the same folder and rename it into place: another process
    (or a killed one) never leaves half a model file where a reader would load it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    os.close(handle)
    try:
        write(Path(temporary))
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def _export(folder: Path, out: Path) -> None:
    """The model's transformer (token embeddings out) as ONNX with dynamic batch and sequence axes."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained(str(folder)).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    sample = tokenizer(["an example", "a second, longer example sentence"], padding=True, return_tensors="pt")
    names = [name for name in ("input_ids", "attention_mask", "token_type_ids") if name in sample]

    class TokenEmbeddings(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, *tensors):  # keyword arguments: models differ in their positional order
            return self.model(**dict(zip(names, tensors))).last_hidden_state

    axes = {name: {0: "batch", 1: "sequence"} for name in [*names, "last_hidden_state"]}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on constant branches, not problems of this model
        torch.onnx.export(TokenEmbeddings(), tuple(sample[name] for name in names), str(out), input_names=names,
                          output_names=["last_hidden_state"], dynamic_axes=axes, opset_version=OPSET, dynamo=False)


def _quantize(fp32: Path, out: Path) -> None:
    """Dynamic int8 of the MatMul weights, per output channel (all ops, or per tensor, drift too far)."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    logging.getLogger().setLevel(max(logging.getLogger().level, logging.ERROR))  # its "consider pre-processing" hint
    quantize_dynamic(str(fp32), str(out), per_channel=True, op_types_to_quantize=["MatMul"], weight_type=QuantType.QInt8)


def _json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
