// The KuraPayload wire schema (Eclipse Kura's kurapayload.proto, written out from its field numbers),
// parsed once at module load so the encoder is generated a single time. Field names keep the
// proto's snake_case because they only ever meet the protobufjs encoder, never application code.
import { parse, type Type } from 'protobufjs';

const KURA_PAYLOAD_PROTO = `
syntax = "proto2";

package kuradatatypes;

message KuraPayload {
  message KuraMetric {
    enum ValueType {
      DOUBLE = 0;
      FLOAT = 1;
      INT64 = 2;
      INT32 = 3;
      BOOL = 4;
      STRING = 5;
      BYTES = 6;
    }
    required string name = 1;
    required ValueType type = 2;
    optional double double_value = 3;
    optional float float_value = 4;
    optional int64 long_value = 5;
    optional int32 int_value = 6;
    optional bool bool_value = 7;
    optional string string_value = 8;
    optional bytes bytes_value = 9;
  }

  message KuraPosition {
    required double latitude = 1;
    required double longitude = 2;
    optional double altitude = 3;
    optional double precision = 4;
    optional double heading = 5;
    optional double speed = 6;
    optional int64 timestamp = 7;
    optional int32 satellites = 8;
    optional int32 status = 9;
  }

  optional int64 timestamp = 1;
  optional KuraPosition position = 2;
  extensions 3 to 4999;
  repeated KuraMetric metric = 5000;
  optional bytes body = 5001;
}
`;

const root = parse(KURA_PAYLOAD_PROTO, { keepCase: true }).root;

export const KuraPayloadProto: Type = root.lookupType('kuradatatypes.KuraPayload');

/** Protobuf wire types (the low three bits of every tag). */
export const WireType = {
  VARINT: 0,
  FIXED64: 1,
  LENGTH_DELIMITED: 2,
  START_GROUP: 3,
  END_GROUP: 4,
  FIXED32: 5,
} as const;
