from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.agent.openai_stub import Stub, running_stub


@pytest.fixture
def openai_stub(settings) -> Iterator[Stub]:
    """The stub server, and the settings that point the agent at it."""
    with running_stub() as stub:
        settings.OPENAI_BASE_URL = stub.base_url
        settings.OPENAI_API_KEY = "sk-test-secret-key"
        settings.AGENT_MODEL = "stub-model"
        settings.AGENT_TIMEOUT_SECONDS = 5.0
        yield stub
