/*
 * Hand-made message definitions for route and rest tests that do not need a
 * loaded registry: the shapes the schema module produces, built statically.
 */
#ifndef GW_TEST_ROUTE_FIXTURE_H
#define GW_TEST_ROUTE_FIXTURE_H

#include "schema/schema.h"

#define FIELD(nm, jn, num, ty, lab) \
    { .name = nm, .json_name = jn, .number = num, .type = ty, .label = lab, .oneof_index = -1 }
#define MFIELD(nm, jn, num, msg, lab)                                                   \
    { .name = nm, .json_name = jn, .number = num, .type = GW_TYPE_MESSAGE, .label = lab, \
      .message = msg, .has_presence = true, .oneof_index = -1 }

static const gw_message_def fx_timestamp = {
    .full_name = "google.protobuf.Timestamp", .name = "Timestamp", .syntax = GW_SYNTAX_PROTO3,
    .wkt = GW_WKT_TIMESTAMP,
};
static const gw_message_def fx_struct = {
    .full_name = "google.protobuf.Struct", .name = "Struct", .syntax = GW_SYNTAX_PROTO3,
    .wkt = GW_WKT_STRUCT,
};

static const gw_field_def fx_address_fields[] = {
    FIELD("street", "street", 1, GW_TYPE_STRING, GW_LABEL_OPTIONAL),
    FIELD("city_name", "cityName", 2, GW_TYPE_STRING, GW_LABEL_OPTIONAL),
};
static const gw_message_def fx_address = {
    .full_name = "t.Address", .name = "Address", .syntax = GW_SYNTAX_PROTO3,
    .field_count = 2, .fields = fx_address_fields,
};

static const gw_field_def fx_entry_fields[] = {
    FIELD("key", "key", 1, GW_TYPE_STRING, GW_LABEL_OPTIONAL),
    FIELD("value", "value", 2, GW_TYPE_STRING, GW_LABEL_OPTIONAL),
};
static const gw_message_def fx_entry = {
    .full_name = "t.Shelf.LabelsEntry", .name = "LabelsEntry", .syntax = GW_SYNTAX_PROTO3,
    .map_entry = true, .field_count = 2, .fields = fx_entry_fields,
};

static const gw_field_def fx_shelf_fields[] = {
    FIELD("name", "name", 1, GW_TYPE_STRING, GW_LABEL_OPTIONAL),
    FIELD("shelf_id", "shelfId", 2, GW_TYPE_INT64, GW_LABEL_OPTIONAL),
    FIELD("tags", "tags", 3, GW_TYPE_STRING, GW_LABEL_REPEATED),
    MFIELD("address", "address", 4, &fx_address, GW_LABEL_OPTIONAL),
    MFIELD("created_at", "createdAt", 5, &fx_timestamp, GW_LABEL_OPTIONAL),
    { .name = "labels", .json_name = "labels", .number = 7, .type = GW_TYPE_MESSAGE,
      .label = GW_LABEL_REPEATED, .message = &fx_entry, .is_map = true, .oneof_index = -1 },
    MFIELD("extra", "extra", 8, &fx_struct, GW_LABEL_OPTIONAL),
    MFIELD("history", "history", 9, &fx_address, GW_LABEL_REPEATED),
    FIELD("parent", "parent", 10, GW_TYPE_STRING, GW_LABEL_OPTIONAL),
};
static const gw_message_def fx_shelf = {
    .full_name = "t.Shelf", .name = "Shelf", .syntax = GW_SYNTAX_PROTO3,
    .field_count = GW_ARRAY_LEN(fx_shelf_fields), .fields = fx_shelf_fields,
};

#endif
