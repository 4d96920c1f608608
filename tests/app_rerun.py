"""A rerun of a page at unchanged settings must not redo its expensive work: its cached functions answer.

Checked without a clock (a wall-time bound fails on a busy machine and passes on a fast one whatever the
code does): the expensive library functions are replaced by ones that record the call and fail, the page
is rerun, and no call may have reached them. Removing a page's cache makes these tests fail.
"""


def rerun_from_cache(at, monkeypatch, targets: list[str]):
    """Rerun AppTest `at` with every function in `targets` ("module.attribute") refusing to run; return `at`.
    Fails naming each target that the rerun called, and on any exception or error shown by the page."""
    called = []

    def refusing(target):
        def refuse(*args, **kwargs):
            called.append(target)
            raise AssertionError(f"{target} was called again on a rerun at unchanged settings")
        return refuse

    for target in targets:
        monkeypatch.setattr(target, refusing(target))
    at.run()
    assert not called, f"a rerun at unchanged settings recomputed: {called}"
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    return at
