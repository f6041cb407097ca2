import threading

import pytest

from runtime.background import Background


def test_result_is_the_functions_value_computed_on_another_thread():
    job = Background(lambda a, b: (a + b, threading.get_ident()), 2, 3)
    value, thread = job.result()
    assert value == 5 and thread != threading.get_ident()
    assert job.result()[0] == 5  # taken again, the same value


def test_the_functions_exception_is_raised_by_result_on_the_callers_thread():
    def fail():
        raise ValueError("bad folder")

    job = Background(fail)
    job.wait()  # waiting does not raise
    with pytest.raises(ValueError, match="bad folder"):
        job.result()
