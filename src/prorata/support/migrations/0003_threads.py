"""Support requests become threads: messages both ways, three statuses, an assignee, the invoice
of a refund request and the target of a downgrade request.

Each request's message becomes its first message, its answer (if any) a staff message; "closed"
becomes "resolved".
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def to_threads(apps, schema_editor):
    SupportRequest = apps.get_model("support", "SupportRequest")
    SupportMessage = apps.get_model("support", "SupportMessage")
    for request in SupportRequest.objects.all():
        SupportMessage.objects.create(request=request, author_id=request.user_id,
                                      from_staff=False, body=request.message,
                                      created_at=request.created_at)
        last = request.created_at
        if request.answer:
            last = request.resolved_at or request.created_at
            SupportMessage.objects.create(
                request=request, author_id=request.answered_by_id or request.user_id,
                from_staff=True, body=request.answer, created_at=last)
        request.updated_at = last
        if request.status == "closed":
            request.status = "resolved"
            request.resolved_at = request.resolved_at or last
        else:
            request.resolved_at = None
        request.save()


class Migration(migrations.Migration):
    dependencies = [
        ("support", "0002_staff_permissions"),
        ("billing", "0006_balance_account_no_own_index"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RenameField("supportrequest", "closed_at", "resolved_at"),
        migrations.AlterField(
            model_name="supportrequest", name="resolved_at",
            field=models.DateTimeField(blank=True, null=True, verbose_name="resolved at"),
        ),
        migrations.AddField(
            model_name="supportrequest", name="updated_at",
            field=models.DateTimeField(null=True, verbose_name="last message at"),
        ),
        migrations.AddField(
            model_name="supportrequest", name="assignee",
            field=models.ForeignKey(blank=True, limit_choices_to={"is_staff": True}, null=True,
                                    on_delete=django.db.models.deletion.PROTECT,
                                    related_name="+", to=settings.AUTH_USER_MODEL,
                                    verbose_name="assigned to"),
        ),
        migrations.AddField(
            model_name="supportrequest", name="invoice",
            field=models.ForeignKey(blank=True, null=True,
                                    on_delete=django.db.models.deletion.PROTECT,
                                    related_name="+", to="billing.document",
                                    verbose_name="invoice"),
        ),
        migrations.AddField(
            model_name="supportrequest", name="product_code",
            field=models.CharField(blank=True, default="", max_length=40, verbose_name="product"),
        ),
        migrations.AddField(
            model_name="supportrequest", name="target_plan",
            field=models.CharField(blank=True, default="", max_length=40,
                                   verbose_name="target plan"),
        ),
        migrations.AddField(
            model_name="supportrequest", name="target_cycle",
            field=models.CharField(blank=True, default="", max_length=40,
                                   verbose_name="target billing period"),
        ),
        migrations.AddField(
            model_name="supportrequest", name="target_quantity",
            field=models.PositiveIntegerField(blank=True, null=True,
                                              verbose_name="target licenses"),
        ),
        migrations.CreateModel(
            name="SupportMessage",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                           verbose_name="ID")),
                ("from_staff", models.BooleanField(default=False)),
                ("body", models.TextField()),
                ("created_at", models.DateTimeField()),
                ("author", models.ForeignKey(on_delete=django.db.models.deletion.PROTECT,
                                             related_name="+", to=settings.AUTH_USER_MODEL)),
                ("request", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE,
                                              related_name="messages",
                                              to="support.supportrequest")),
            ],
            options={
                "ordering": ["created_at", "id"],
                "indexes": [models.Index(fields=["request", "created_at"],
                                         name="support_message_thread")],
            },
        ),
        migrations.RunPython(to_threads, migrations.RunPython.noop),
        migrations.RemoveField("supportrequest", "message"),
        migrations.RemoveField("supportrequest", "answer"),
        migrations.RemoveField("supportrequest", "answered_by"),
        migrations.AlterField(
            model_name="supportrequest", name="updated_at",
            field=models.DateTimeField(verbose_name="last message at"),
        ),
        migrations.AlterField(
            model_name="supportrequest", name="kind",
            field=models.CharField(choices=[("billing_question", "billing question"),
                                            ("refund_request", "refund request"),
                                            ("downgrade_request", "plan downgrade request"),
                                            ("other", "other")],
                                   max_length=24, verbose_name="kind"),
        ),
        migrations.AlterField(
            model_name="supportrequest", name="status",
            field=models.CharField(choices=[("open", "open"), ("waiting", "waiting on customer"),
                                            ("resolved", "resolved")],
                                   default="open", max_length=8, verbose_name="status"),
        ),
        migrations.AddIndex(
            model_name="supportrequest",
            index=models.Index(fields=["account", "created_at"], name="support_request_account"),
        ),
        migrations.AddConstraint(
            model_name="supportrequest",
            constraint=models.CheckConstraint(
                condition=models.Q(("status", "resolved"), ("resolved_at__isnull", True),
                                   _connector="OR"),
                name="support_request_resolved_at_when_resolved"),
        ),
    ]
