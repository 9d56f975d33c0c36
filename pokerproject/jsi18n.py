"""The translations of the JavaScript (static/), served as a script by Django's JavaScriptCatalog.

Every page loads it before its other scripts, so it has to be cheap: the script for a language
is built once per process (the catalogues, like Django's own translations, are read once per
process), browsers keep it for an hour and then revalidate it with its ETag (a 304 costs no
catalogue work). The language comes from LocaleMiddleware (the language cookie, then
Accept-Language), so the answer varies on those two headers.
"""

from __future__ import annotations

import hashlib
from typing import Any, ClassVar

from django.http import HttpRequest, HttpResponse
from django.utils.cache import get_conditional_response, patch_cache_control, patch_vary_headers
from django.utils.http import quote_etag
from django.utils.translation import get_language
from django.views.i18n import JavaScriptCatalog

MAX_AGE_SECONDS = 3600


class CachedJavaScriptCatalog(JavaScriptCatalog):
    # The project's catalogue lives in LOCALE_PATHS (locale/de/LC_MESSAGES/djangojs.po), which
    # Django always reads. Naming one app (without a locale/ of its own) keeps DjangoTranslation
    # from merging every installed app's djangojs catalogue (the admin's) into the script.
    packages = ["rooms"]

    # language -> (the script, its ETag); bounded by settings.LANGUAGES.
    _built: ClassVar[dict[str, tuple[bytes, str]]] = {}

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        language = get_language()
        built = self._built.get(language)
        if built is None:
            script = super().get(request, *args, **kwargs)
            etag = quote_etag(hashlib.sha256(script.content).hexdigest()[:32])
            built = self._built[language] = (script.content, etag)
        content, etag = built
        response = HttpResponse(content, content_type='text/javascript; charset="utf-8"')
        response["ETag"] = etag
        # The same for everyone with this language: public (SecurityHeadersMiddleware leaves
        # a public answer's caching alone even for a signed-in user).
        patch_cache_control(response, public=True, max_age=MAX_AGE_SECONDS)
        patch_vary_headers(response, ("Accept-Language", "Cookie"))
        # A 304 when the browser holds this tag already; the script otherwise.
        return get_conditional_response(request, etag=etag, response=response) or response
