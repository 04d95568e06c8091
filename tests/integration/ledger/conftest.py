from __future__ import annotations

import pytest

from tests.support.factories import approved_course


@pytest.fixture
async def course(catalog, base, fuzhou):
    """An approved online course of topic 5 (7 学时)."""
    return await approved_course(catalog, base, fuzhou, topic="5", hours=7, mode="online")
