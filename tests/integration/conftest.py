from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from catalog.app import create_app as create_catalog
from hours_ledger.app import create_app as create_ledger
from verification.app import create_app as create_verification

from tests.support.factories import Actor, approved_base, make_staff
from tests.support.http import running


@pytest.fixture
async def catalog(settings) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_catalog(settings)) as client:
        yield client


@pytest.fixture
async def ledger(settings) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_ledger(settings)) as client:
        yield client


@pytest.fixture
async def verification(settings) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_verification(settings)) as client:
        yield client


@pytest.fixture
async def fuzhou(engine) -> Actor:
    """Fuzhou's HR bureau (city_admin of 350100)."""
    return await make_staff(engine, "city_admin", region="350100")


@pytest.fixture
async def base(catalog, fuzhou):
    """A municipal base of Fuzhou, registered and approved through the catalog's API."""
    return await approved_base(catalog, fuzhou)


@pytest.fixture
async def admin(engine) -> Actor:
    return await make_staff(engine, "province_admin")


@pytest.fixture
async def auditor(engine) -> Actor:
    return await make_staff(engine, "auditor")
