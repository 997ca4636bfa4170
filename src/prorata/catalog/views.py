from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def plans(request: HttpRequest) -> HttpResponse:
    return render(request, "catalog/plans.html", {})
