import pytest

from tests.orders.helpers import fast_password_hashing  # noqa: F401  (autouse fixture)


@pytest.fixture(params=["postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    """Race tests need PostgreSQL's row locks (SQLite serialises every writer anyway)."""
    return str(request.param)
