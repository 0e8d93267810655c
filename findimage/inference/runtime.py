"""ONNX Runtime sessions, with the thread count the process budget gives them."""

from __future__ import annotations

from pathlib import Path

import numpy as np


class OnnxSession:
    """One exported tower on ONNX Runtime's CPU provider; `run` is safe from many threads.

    `threads` is the size of ONNX Runtime's own pool for one run (None: one per core; 1:
    the run stays on the calling thread). Pool threads sleep between runs instead of
    spinning: the process's other work (decoding, the store scan) needs those cores the
    moment a run ends.
    """

    def __init__(self, path: Path, threads: int | None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.inter_op_num_threads = 1
        if threads:
            options.intra_op_num_threads = threads
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.input_names = tuple(i.name for i in self._session.get_inputs())
        self.output_dims = int(self._session.get_outputs()[0].shape[-1])

    def run(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        feed = {name: inputs[name] for name in self.input_names}
        (output,) = self._session.run(None, feed)
        return np.asarray(output, dtype=np.float32)
