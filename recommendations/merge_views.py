"""`POST /api/v1/patients/{id}/merge/`: fold a duplicate patient into this one (admin role).

Here, beside the evaluation endpoint, because the merge service lives in recommendations (see
recommendations/services/merge.py for why).
"""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from clinrec.openapi import BAD_REQUEST, NOT_FOUND, READ_ERRORS, ErrorSerializer
from clinrec.viewsets import no_such_id
from patients.models import PatientMerge
from patients.tombstones import GONE
from recommendations import services
from recommendations.serializers import EvaluationSerializer
from security.permissions import requires_permission


class MergeRequestSerializer(serializers.Serializer):
    source = serializers.CharField(max_length=64, help_text="The id of the duplicate patient to fold into this one.")


class MergeQuerySerializer(serializers.Serializer):
    evaluate = serializers.BooleanField(
        required=False, default=False, help_text="true: evaluate the merged patient and return the evaluation."
    )


class PatientMergeSerializer(serializers.ModelSerializer):
    """The record of a merge: who, when, the ids moved and collapsed per kind, the demographic fields filled."""

    merged_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    moved = serializers.DictField(help_text="`{procedures, recommendations, events: [ids], demographics: [fields]}`")
    collapsed = serializers.DictField(
        help_text="`{procedures: [source ids dropped as duplicates], recommendations: [link ids marked merged]}`"
    )
    evaluation = EvaluationSerializer(
        read_only=True, allow_null=True, help_text="The merged patient's evaluation with `?evaluate=true`; else null."
    )

    class Meta:
        model = PatientMerge
        fields = ["id", "source", "target", "merged_by", "merged_at", "moved", "collapsed", "evaluation"]


class MergePatientView(APIView):
    """Merge a duplicate (`source`) into the patient of the path; the source becomes a 410 tombstone."""

    permission_classes = [requires_permission("patients.merge_patient")]

    @extend_schema(
        summary="Merge a duplicate patient into this one",
        description=(
            "In one transaction: moves the source's procedure history and recommendations (and their events' "
            "patient ids) to this patient; drops a source procedure the target already has at the same instant; "
            "of two active links to one programme keeps the older and marks the other `merged`; fills this "
            "patient's empty demographic fields from the source (never overwriting). The source then answers "
            "410 with `merged_into`. Self-merge 400; unknown id 404; a source or target already merged 409 "
            "(also the loser of two concurrent merges). `?evaluate=true` evaluates the merged patient. Admin role."
        ),
        request=MergeRequestSerializer,
        parameters=[MergeQuerySerializer],
        responses={
            201: PatientMergeSerializer,
            400: BAD_REQUEST,
            **READ_ERRORS,
            404: NOT_FOUND,
            409: OpenApiResponse(ErrorSerializer, description="The source or the target was already merged."),
            410: GONE,
        },
        tags=["patients"],
    )
    def post(self, request, pk: str):
        query = MergeQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        body = MergeRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        source = body.validated_data["source"]
        if no_such_id(pk) or no_such_id(source):
            raise Http404("No such patient.")
        merge = services.merge_patients(target_id=pk, source_id=source, merged_by=request.user)
        evaluate = query.validated_data["evaluate"]
        merge.evaluation = services.evaluate_patient(patient_id=pk) if evaluate else None
        return Response(PatientMergeSerializer(merge).data, status=status.HTTP_201_CREATED)
