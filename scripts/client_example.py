#!/usr/bin/env python3
"""Calls a running medsec through standard gRPC health and reflection, as a
secretary with a bearer token.

Needs: pip install grpcio grpcio-reflection grpcio-health-checking
Run `make run` in another terminal first, then:

    MEDSEC_TOKEN=$(medsec token --role secretary --subject s.jones | tail -1) \
        python3 scripts/client_example.py
"""
import os

import grpc
from google.protobuf.descriptor_pool import DescriptorPool
from google.protobuf.message_factory import GetMessageClass
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from grpc_health.v1 import health_pb2, health_pb2_grpc

address = os.environ.get("MEDSEC_ADDRESS", "127.0.0.1:50051")
token = os.environ["MEDSEC_TOKEN"]

# Plaintext to a server on this machine, with the token on every call.
credentials = grpc.composite_channel_credentials(
    grpc.local_channel_credentials(), grpc.access_token_call_credentials(token)
)
channel = grpc.secure_channel(address, credentials)

# Health: each service reports SERVING.
health = health_pb2_grpc.HealthStub(channel)
for service in ["medsec.records.v1.RecordsService",
                "medsec.scheduling.v1.SchedulingService",
                "medsec.billing.v1.BillingService"]:
    print(service, health.Check(health_pb2.HealthCheckRequest(service=service)).status)

# Reflection: learn the schema from the server, then call it.
reflection = ProtoReflectionDescriptorDatabase(channel)
print(sorted(reflection.get_services()))
pool = DescriptorPool(reflection)
create = pool.FindMethodByName("medsec.records.v1.RecordsService.CreatePatient")
Request = GetMessageClass(create.input_type)
Patient = GetMessageClass(create.output_type)
call = channel.unary_unary(
    "/medsec.records.v1.RecordsService/CreatePatient",
    request_serializer=Request.SerializeToString,
    response_deserializer=Patient.FromString,
)
patient = call(
    Request(
        patient={"nhs_number": "943 476 5919", "given_name": "Ada",
                 "family_name": "Lovelace", "birth_date": "1985-12-10",
                 "sex": "SEX_FEMALE", "address": {"postcode": "sw1a 1aa"}},
        request_id="readme-example-1",
    ),
    # Registering a patient touches patient data: say why.
    metadata=[("x-medsec-purpose", "direct_care")],
)
print(patient)
