from django.contrib import admin
from django.urls import include, path

admin.site.site_header = "Prorata console"
admin.site.site_title = "Prorata console"
admin.site.index_title = "Staff console"

urlpatterns = [
    path("console/", admin.site.urls),
    path("", include("prorata.catalog.urls")),
]
