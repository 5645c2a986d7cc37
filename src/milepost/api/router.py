"""HTTP API v1: every router of SPEC §5.1 under /v1."""

from fastapi import APIRouter

from milepost.api import admin, auth, dev, disputes, money, orders
from milepost.cashflow.api import router as cashflow_router
from milepost.changes.api import router as changes_router
from milepost.planning.api import router as planning_router
from milepost.reviews.api import router as reviews_router

router = APIRouter(prefix="/v1")
router.include_router(auth.router)
router.include_router(orders.router)
router.include_router(disputes.router)
router.include_router(money.router)
router.include_router(admin.router)
router.include_router(dev.router)
router.include_router(cashflow_router)
router.include_router(planning_router)
router.include_router(changes_router)
router.include_router(reviews_router)
