"""What podq prints has passwords and tokens masked."""
from __future__ import annotations

import logging

from podq.shared.secrets import MASK, ScrubbingFormatter, scrub, shown


def test_url_passwords_and_bearer_tokens_are_masked():
    text = "to redis://app:pa55@h:6379/0 and rediss+sentinel://:x%40y@s1,s2/m; Authorization: Bearer abc.def-123"
    assert scrub(text) == (f"to redis://app:{MASK}@h:6379/0 and rediss+sentinel://:{MASK}@s1,s2/m; "
                           f"Authorization: Bearer {MASK}")
    assert scrub("redis://h:6379/0 and http://example/a:b@c") == "redis://h:6379/0 and http://example/a:b@c"


def test_settings_show_secrets_masked():
    assert shown("PODQ_REDIS_SENTINEL_PASSWORD", "s3cret") == MASK
    assert shown("PODQ_REDIS_URL", "redis://:s3cret@h/0") == f"redis://:{MASK}@h/0"
    assert shown("PODQ_REDIS_SENTINEL_PASSWORD", None) is None
    assert shown("PODQ_WORKER_CONCURRENCY", 8) == 8


def test_log_lines_and_tracebacks_are_masked():
    formatter = ScrubbingFormatter(logging.Formatter("%(message)s"))
    try:
        raise ValueError("cannot reach redis://:hunter2@h/0")
    except ValueError:
        import sys
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "url %s", ("redis://u:hunter2@h",), sys.exc_info())
    line = formatter.format(record)
    assert "hunter2" not in line and "redis://u:***@h" in line
