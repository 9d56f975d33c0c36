import pytest
from django.utils import translation


@pytest.fixture(autouse=True)
def _default_language_afterwards():
    """LocaleMiddleware activates a request's language for the rest of the thread: a German
    request here must not leave the next test (which expects English) in German."""
    yield
    translation.deactivate()
