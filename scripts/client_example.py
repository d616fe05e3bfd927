#!/usr/bin/env python3
"""Calls a running medsec through standard gRPC health and reflection.

Needs: pip install grpcio grpcio-reflection grpcio-health-checking
Run `make run` in another terminal first.
"""
import grpc
from google.protobuf.descriptor_pool import DescriptorPool
from google.protobuf.message_factory import GetMessageClass
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from grpc_health.v1 import health_pb2, health_pb2_grpc

channel = grpc.insecure_channel("127.0.0.1:50051")

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
patient = call(Request(
    patient={"nhs_number": "943 476 5919", "given_name": "Ada",
             "family_name": "Lovelace", "birth_date": "1985-12-10",
             "sex": "SEX_FEMALE", "address": {"postcode": "sw1a 1aa"}},
    request_id="readme-example-1",
))
print(patient)
