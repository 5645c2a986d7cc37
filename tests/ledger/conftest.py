from tests.orders.helpers import fast_password_hashing  # noqa: F401  (autouse fixture)
