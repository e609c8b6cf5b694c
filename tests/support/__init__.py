"""Test-only helpers, importable as ``support`` (pyproject's pytest ``pythonpath``): a private
local Ray head for `ray job submit` tests (``cluster``), synthetic training shards
(``synthetic``) and job entry scripts that tests submit."""
