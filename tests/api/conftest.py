from integrations.tests.fixtures import alpha, anonymous, beta  # noqa: F401
from rooms.tests.channel_events import committed, listen  # noqa: F401
