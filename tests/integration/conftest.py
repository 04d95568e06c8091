from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from catalog.app import create_app as create_catalog
from hours_ledger.app import create_app as create_ledger
from verification.app import create_app as create_verification

from tests.support.factories import Actor, make_staff
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
async def admin(engine) -> Actor:
    return await make_staff(engine, "province_admin")


@pytest.fixture
async def auditor(engine) -> Actor:
    return await make_staff(engine, "auditor")
