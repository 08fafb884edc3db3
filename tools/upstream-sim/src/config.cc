#include <functional>
#include <map>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <herald/common/strings.h>
#include <herald/upstream_sim/config.h>
#include <herald/upstream_sim/json_writer.h>

namespace herald::upstream_sim {
namespace {

namespace json = boost::json;

absl::Status Invalid(std::string_view key, std::string_view why) {
  return absl::InvalidArgumentError(StrCat(key, ": ", why));
}

std::optional<double> AsNumber(const json::value& v) {
  if (v.is_int64()) return static_cast<double>(v.as_int64());
  if (v.is_uint64()) return static_cast<double>(v.as_uint64());
  if (v.is_double()) return v.as_double();
  return std::nullopt;
}

using Setter = std::function<absl::Status(std::string_view key, const json::value&)>;

Setter Number(double& field, double min, double max) {
  return [&field, min, max](std::string_view key, const json::value& v) -> absl::Status {
    auto n = AsNumber(v);
    if (!n || *n < min || *n > max) {
      return Invalid(key, StrCat("must be a number in [", min, ", ", max, "]"));
    }
    field = *n;
    return absl::OkStatus();
  };
}

template <typename Int>
Setter Integer(Int& field, int64_t min, int64_t max) {
  return [&field, min, max](std::string_view key, const json::value& v) -> absl::Status {
    auto n = AsNumber(v);
    if (!n || *n != static_cast<double>(static_cast<int64_t>(*n)) ||
        *n < static_cast<double>(min) || *n > static_cast<double>(max)) {
      return Invalid(key, StrCat("must be an integer in [", min, ", ", max, "]"));
    }
    field = static_cast<Int>(*n);
    return absl::OkStatus();
  };
}

Setter Millis(absl::Duration& field) {
  return [&field](std::string_view key, const json::value& v) -> absl::Status {
    auto n = AsNumber(v);
    if (!n || *n < 0) return Invalid(key, "must be a non-negative number of milliseconds");
    field = absl::Milliseconds(*n);
    return absl::OkStatus();
  };
}

}  // namespace

std::optional<UploadResponseShape> ParseUploadResponseShape(std::string_view name) {
  if (name == "flat") return UploadResponseShape::kFlat;
  if (name == "data") return UploadResponseShape::kData;
  return std::nullopt;
}

std::string_view UploadResponseShapeName(UploadResponseShape shape) {
  return shape == UploadResponseShape::kData ? "data" : "flat";
}

absl::Status Behavior::Validate() const {
  if (!(delivery_rate > 0)) return Invalid("delivery_rate", "must be positive");
  if (purchase_probability < 0 || purchase_probability > 1) {
    return Invalid("purchase_probability", "must be in [0, 1]");
  }
  if (view_probability < 0 || view_probability > 1) {
    return Invalid("view_probability", "must be in [0, 1]");
  }
  if (purchase_delay_min > purchase_delay_max) {
    return Invalid("purchase_delay_min_ms", "must not exceed purchase_delay_max_ms");
  }
  if (unsend_window < absl::ZeroDuration()) return Invalid("unsend_window_ms", "must be >= 0");
  if (new_subscribers_per_second < 0) return Invalid("new_subscribers_per_second", "must be >= 0");
  if (max_ids_per_list_add < 1) return Invalid("max_ids_per_list_add", "must be >= 1");
  if (member_page_shortfall < 0) return Invalid("member_page_shortfall", "must be >= 0");
  if (buyer_page_shortfall < 0) return Invalid("buyer_page_shortfall", "must be >= 0");
  if (upload_credits_per_mb < 0) return Invalid("upload_credits_per_mb", "must be >= 0");
  return absl::OkStatus();
}

absl::Status WebhookPolicy::Validate() const {
  if (max_retries < 0) return Invalid("webhook_max_retries", "must be >= 0");
  if (duplicate_rate < 0 || duplicate_rate > 1) {
    return Invalid("webhook_duplicate_rate", "must be in [0, 1]");
  }
  if (concurrency < 1) return Invalid("webhook_concurrency", "must be >= 1");
  if (max_backlog < 1) return Invalid("webhook_max_backlog", "must be >= 1");
  if (request_timeout <= absl::ZeroDuration() || connect_timeout <= absl::ZeroDuration()) {
    return Invalid("webhook_request_timeout_ms", "timeouts must be positive");
  }
  return absl::OkStatus();
}

absl::Status ApplyBehaviorJson(std::string_view text, Behavior& behavior, WebhookPolicy& policy) {
  boost::system::error_code ec;
  json::value root = json::parse(json::string_view(text.data(), text.size()), ec);
  if (ec || !root.is_object()) return absl::InvalidArgumentError("body must be a JSON object");
  Behavior b = behavior;
  WebhookPolicy p = policy;
  const std::map<std::string, Setter, std::less<>> setters = {
      {"delivery_rate", Number(b.delivery_rate, 1e-9, 1e12)},
      {"unsend_window_ms", Millis(b.unsend_window)},
      {"purchase_probability", Number(b.purchase_probability, 0, 1)},
      {"fan_behavior",
       [&b](std::string_view key, const json::value& v) -> absl::Status {
         if (v.is_string() && v.as_string() == "uniform") {
           b.fan_behavior = FanBehavior::kUniform;
         } else if (v.is_string() && v.as_string() == "spend_weighted") {
           b.fan_behavior = FanBehavior::kSpendWeighted;
         } else {
           return Invalid(key, "must be \"uniform\" or \"spend_weighted\"");
         }
         return absl::OkStatus();
       }},
      {"purchase_delay_min_ms", Millis(b.purchase_delay_min)},
      {"purchase_delay_max_ms", Millis(b.purchase_delay_max)},
      {"view_probability", Number(b.view_probability, 0, 1)},
      {"new_subscribers_per_second", Number(b.new_subscribers_per_second, 0, 1e6)},
      {"progress_interval_ms", Millis(b.progress_interval)},
      {"max_ids_per_list_add", Integer(b.max_ids_per_list_add, 1, 1'000'000)},
      {"member_page_shortfall", Integer(b.member_page_shortfall, 0, 100)},
      {"buyer_page_shortfall", Integer(b.buyer_page_shortfall, 0, 100)},
      {"buyer_page_links",
       [&b](std::string_view key, const json::value& v) -> absl::Status {
         if (!v.is_bool()) return Invalid(key, "must be true or false");
         b.buyer_page_links = v.as_bool();
         return absl::OkStatus();
       }},
      {"upload_credits_per_mb", Integer(b.upload_credits_per_mb, 0, 1'000'000)},
      {"url_upload_bytes", Integer(b.url_upload_bytes, 0, int64_t{1} << 40)},
      {"async_upload_delay_ms", Millis(b.async_upload_delay)},
      {"upload_response_shape",
       [&b](std::string_view key, const json::value& v) -> absl::Status {
         std::optional<UploadResponseShape> shape;
         if (v.is_string()) {
           shape = ParseUploadResponseShape(
               std::string_view(v.as_string().data(), v.as_string().size()));
         }
         if (!shape.has_value()) return Invalid(key, "must be \"flat\" or \"data\"");
         b.upload_response_shape = *shape;
         return absl::OkStatus();
       }},
      {"recent_queue_window_ms", Millis(b.recent_queue_window)},
      {"webhook_max_retries", Integer(p.max_retries, 0, 100)},
      {"webhook_retry_base_ms", Millis(p.retry_base)},
      {"webhook_retry_max_ms", Millis(p.retry_max)},
      {"webhook_connect_timeout_ms", Millis(p.connect_timeout)},
      {"webhook_request_timeout_ms", Millis(p.request_timeout)},
      {"webhook_duplicate_rate", Number(p.duplicate_rate, 0, 1)},
      {"webhook_concurrency", Integer(p.concurrency, 1, 4096)},
      {"webhook_max_backlog", Integer(p.max_backlog, 1, int64_t{1} << 32)},
  };
  for (const auto& entry : root.as_object()) {
    const std::string_view key(entry.key().data(), entry.key().size());
    auto it = setters.find(key);
    if (it == setters.end()) return Invalid(key, "unknown setting");
    if (absl::Status s = it->second(key, entry.value()); !s.ok()) return s;
  }
  if (absl::Status s = b.Validate(); !s.ok()) return s;
  if (absl::Status s = p.Validate(); !s.ok()) return s;
  behavior = b;
  policy = p;
  return absl::OkStatus();
}

std::string BehaviorToJson(const Behavior& b, const WebhookPolicy& p) {
  auto ms = [](absl::Duration d) { return absl::ToInt64Milliseconds(d); };
  JsonWriter w;
  w.BeginObject();
  w.Key("delivery_rate").Double(b.delivery_rate);
  w.Field("unsend_window_ms", ms(b.unsend_window));
  w.Key("purchase_probability").Double(b.purchase_probability);
  w.Field("fan_behavior", b.fan_behavior == FanBehavior::kUniform ? "uniform" : "spend_weighted");
  w.Field("purchase_delay_min_ms", ms(b.purchase_delay_min));
  w.Field("purchase_delay_max_ms", ms(b.purchase_delay_max));
  w.Key("view_probability").Double(b.view_probability);
  w.Key("new_subscribers_per_second").Double(b.new_subscribers_per_second);
  w.Field("progress_interval_ms", ms(b.progress_interval));
  w.Field("max_ids_per_list_add", b.max_ids_per_list_add);
  w.Field("member_page_shortfall", b.member_page_shortfall);
  w.Field("buyer_page_shortfall", b.buyer_page_shortfall);
  w.Field("buyer_page_links", b.buyer_page_links);
  w.Field("upload_credits_per_mb", b.upload_credits_per_mb);
  w.Field("url_upload_bytes", b.url_upload_bytes);
  w.Field("async_upload_delay_ms", ms(b.async_upload_delay));
  w.Field("upload_response_shape", UploadResponseShapeName(b.upload_response_shape));
  w.Field("recent_queue_window_ms", ms(b.recent_queue_window));
  w.Field("webhook_max_retries", p.max_retries);
  w.Field("webhook_retry_base_ms", ms(p.retry_base));
  w.Field("webhook_retry_max_ms", ms(p.retry_max));
  w.Field("webhook_connect_timeout_ms", ms(p.connect_timeout));
  w.Field("webhook_request_timeout_ms", ms(p.request_timeout));
  w.Key("webhook_duplicate_rate").Double(p.duplicate_rate);
  w.Field("webhook_concurrency", p.concurrency);
  w.Field("webhook_max_backlog", p.max_backlog);
  w.EndObject();
  return w.Take();
}

}  // namespace herald::upstream_sim
