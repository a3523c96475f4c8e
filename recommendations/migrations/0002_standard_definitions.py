"""Create the three standard recommendation definitions, so a fresh database can evaluate at once."""

from django.db import migrations

STANDARD = [
    (
        "physical-therapy",
        "physical_therapy",
        "Physical Therapy",
        "Supervised physiotherapy programme for older patients living with chronic pain.",
    ),
    (
        "weight-management",
        "weight_management",
        "Weight Management Program",
        "Dietetic and activity programme for patients with obesity (BMI above the threshold).",
    ),
    (
        "post-op-rehab",
        "post_op_rehab",
        "Post-Op Rehabilitation Plan",
        "Rehabilitation plan after recent surgery in an admissible department (orthopaedics by default).",
    ),
]


def create_definitions(apps, schema_editor):
    Recommendation = apps.get_model("recommendations", "Recommendation")
    for pk, rule, name, description in STANDARD:
        if not Recommendation.objects.filter(rule=rule).exists() and not Recommendation.objects.filter(pk=pk).exists():
            Recommendation.objects.create(id=pk, rule=rule, name=name, description=description)


class Migration(migrations.Migration):
    dependencies = [("recommendations", "0001_initial")]

    operations = [migrations.RunPython(create_definitions, migrations.RunPython.noop)]
