from __future__ import annotations

import pytest

from tests.support.factories import approved_base, approved_course, make_staff


@pytest.fixture
async def fuzhou(engine):
    return await make_staff(engine, "city_admin", region="350100")


@pytest.fixture
async def base(catalog, fuzhou):
    return await approved_base(catalog, fuzhou)


@pytest.fixture
async def course(catalog, base, fuzhou):
    """An approved online course of topic 5 (7 学时)."""
    return await approved_course(catalog, base, fuzhou, topic="5", hours=7, mode="online")
