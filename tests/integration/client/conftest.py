from __future__ import annotations

import pytest
from hours_ledger.app import create_app as create_ledger

from tests.support.factories import approved_course
from tests.support.servers import serving


@pytest.fixture
async def course(catalog, base, fuzhou):
    return await approved_course(catalog, base, fuzhou, topic="5", hours=7, mode="online", code="CL-5")


@pytest.fixture
async def ledger_url(settings):
    """The ledger as a real HTTP server (uvicorn on a port): the client talks to it over TCP."""
    async with serving(create_ledger(settings)) as url:
        yield url
