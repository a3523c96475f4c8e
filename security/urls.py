from django.urls import path

from security.views import LogoutView, RefreshView, RegisterView, TokenView

urlpatterns = [
    path("security/token/", TokenView.as_view(), name="token"),
    path("security/refresh/", RefreshView.as_view(), name="token-refresh"),
    path("security/logout/", LogoutView.as_view(), name="logout"),
    path("security/register/", RegisterView.as_view(), name="register"),
]
