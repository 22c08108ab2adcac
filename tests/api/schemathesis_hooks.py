"""schemathesis hooks of tests/api/schemathesis.sh (loaded through SCHEMATHESIS_HOOKS).

- tus request bodies are application/offset+octet-stream (PATCH /api/v1/uploads/{id}, and
  POST /api/v1/uploads with creation-with-upload), a media type schemathesis does not know:
  its bodies are raw bytes, small ones (the uploads schemathesis creates are small too).
- ast.parse runs one call at a time: with --workers 2, hypothesis describes its filter lambdas
  by parsing their source in both worker threads at once, and CPython 3.11 turns the AST into
  Python objects with a process-global recursion counter, so two threads doing it together fail
  with "SystemError: AST constructor recursion depth mismatch" (CPython gh-106905), reported
  by schemathesis as a Runtime Error of whichever operation it was generating.
"""

import ast
import threading

import schemathesis
from hypothesis import strategies as st

schemathesis.openapi.media_type("application/offset+octet-stream", st.binary(max_size=2048))

_ast_parse = ast.parse
_ast_lock = threading.Lock()


def _serialized_parse(*args, **kwargs):
    with _ast_lock:
        return _ast_parse(*args, **kwargs)


ast.parse = _serialized_parse
