"""Resumable out files moved to htsr.results.resume; these names stay importable from here."""
from .results.files import check_out_path, read_table, write_table
from .results.resume import ResumeError, RunRecorder, model_identity, tensor_fingerprint

__all__ = ["ResumeError", "RunRecorder", "check_out_path", "model_identity", "read_table", "tensor_fingerprint",
           "write_table"]
