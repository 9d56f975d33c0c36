"""Thin Celery tasks of the directory."""

from celery import shared_task

from accounts.services import login_log_trim


@shared_task(name="accounts.trim_login_log", acks_late=True)
def trim_login_log() -> int:
    return login_log_trim()
