from __future__ import annotations

import uuid

import pytest

from polyserve import ConfigurationError, MalformedEventError, Router, Trigger
from polyserve.paths import decode_path, normalize_path


def _noop() -> None: ...


@pytest.mark.parametrize(
    ("template", "path", "params"),
    [
        ("/pets", "/pets", {}),
        ("/pets/{pet_id}", "/pets/rex", {"pet_id": "rex"}),
        ("/pets/{pet_id:int}", "/pets/42", {"pet_id": 42}),
        ("/pets/{pet_id:int}", "/pets/-3", {"pet_id": -3}),
        ("/m/{x:float}", "/m/1.5", {"x": 1.5}),
        ("/files/{rest:path}", "/files/a/b/c.txt", {"rest": "a/b/c.txt"}),
        ("/a/{x}/b/{y:int}", "/a/one/b/2", {"x": "one", "y": 2}),
        ("/files/v{n:int}.json", "/files/v12.json", {"n": 12}),
        ("/r/{a}-{b:int}/x", "/r/pet-7/x", {"a": "pet", "b": 7}),
        ("/r/{a}/{rest:path}", "/r/x/y/z", {"a": "x", "rest": "y/z"}),
        (
            "/u/{id:uuid}",
            "/u/12345678-1234-5678-1234-567812345678",
            {"id": uuid.UUID("12345678-1234-5678-1234-567812345678")},
        ),
    ],
)
def test_templates_match_and_convert(template: str, path: str, params: dict[str, object]) -> None:
    router = Router()
    router.add_route(template, _noop)
    match = router.match("GET", path)
    assert match.route is not None
    assert match.params == params


@pytest.mark.parametrize(
    ("template", "path"),
    [
        ("/pets/{pet_id:int}", "/pets/abc"),
        ("/pets/{pet_id:int}", "/pets/1.5"),
        ("/pets/{pet_id}", "/pets/a/b"),
        ("/pets/{pet_id}", "/pets"),
        ("/u/{id:uuid}", "/u/not-a-uuid"),
        ("/files/v{n:int}.json", "/files/v1.txt"),
        ("/files/v{n:int}.json", "/files/vx.json"),
        ("/a/{x}/b", "/a/1/c"),
        ("/a/{x:int}/b", "/a/x/b"),
    ],
)
def test_non_matching_paths_find_nothing(template: str, path: str) -> None:
    router = Router()
    router.add_route(template, _noop)
    match = router.match("GET", path)
    assert match.route is None
    assert match.allowed == frozenset()


def test_wrong_method_reports_allowed_methods_with_head_for_get() -> None:
    router = Router()
    router.add_route("/pets", _noop, ["GET"])
    router.add_route("/pets", _noop, ["POST"], name="create")
    match = router.match("DELETE", "/pets")
    assert match.route is None
    assert match.allowed == {"GET", "HEAD", "POST"}


def test_head_falls_back_to_get() -> None:
    router = Router()
    route = router.add_route("/pets", _noop, ["GET"])
    assert router.match("HEAD", "/pets").route is route


def test_static_route_wins_over_dynamic() -> None:
    router = Router()
    dynamic = router.add_route("/pets/{name}", _noop, name="dynamic")
    static = router.add_route("/pets/mine", _noop, name="static")
    assert router.match("GET", "/pets/mine").route is static
    assert router.match("GET", "/pets/yours").route is dynamic


def test_trailing_slash_is_ignored() -> None:
    router = Router()
    route = router.add_route("/pets/", _noop)
    assert route.path == "/pets"
    assert router.match("GET", normalize_path("/pets/")).route is route


@pytest.mark.parametrize(
    "bad",
    [
        "pets",
        "/pets/{",
        "/pets/{x:nope}",
        "/a/{x}/{x}",
        "/a/{}",
        "/a/{x:}",
        "/a/x}",
        "/a/{x{y}}",
        "/a/{1x}",
        "/a/{x}}",
        "/{rest:path}/more",
    ],
)
def test_bad_templates_are_configuration_errors(bad: str) -> None:
    with pytest.raises(ConfigurationError):
        Router().add_route(bad, _noop)


def test_unknown_method_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        Router().add_route("/x", _noop, ["FETCH"])


def test_duplicate_route_is_a_configuration_error() -> None:
    router = Router()
    router.add_route("/x", _noop, ["GET", "POST"])
    with pytest.raises(ConfigurationError, match="already handled"):
        router.add_route("/x", _noop, ["POST"])


@pytest.mark.parametrize("path", ["/a/../b", "/a/./b", "/..", "relative", "/a\x00b"])
def test_normalize_rejects_dot_segments_and_nul(path: str) -> None:
    with pytest.raises(MalformedEventError) as info:
        normalize_path(path)
    assert info.value.code == "invalid_path"
    assert info.value.status == 400


def test_include_router_applies_prefix_and_keeps_registrations() -> None:
    child = Router()
    child.add_route("/items/{item_id:int}", _noop, ["GET"], status=202)
    child.register(Trigger.QUEUE, "jobs", _noop)
    parent = Router()
    parent.include_router(child, prefix="/v1")
    match = parent.match("GET", "/v1/items/3")
    assert match.route is not None
    assert match.route.status == 202
    assert match.params == {"item_id": 3}
    assert parent.find(Trigger.QUEUE, "jobs") is not None


def test_router_prefix_applies_to_its_routes() -> None:
    router = Router(prefix="/api")
    router.add_route("/ping", _noop)
    assert router.match("GET", "/api/ping").route is not None
    with pytest.raises(ConfigurationError):
        Router(prefix="api/")


def test_registrations_find_by_name_action_and_wildcard() -> None:
    router = Router()
    router.storage("uploads", actions=["created"])(_noop)
    router.cloudevent("*")(_noop)
    router.cloudevent("com.example.order")(_noop)
    assert router.find(Trigger.STORAGE, "uploads", "created") is not None
    assert router.find(Trigger.STORAGE, "uploads", "deleted") is None
    assert router.find(Trigger.STORAGE, "other", "created") is None
    exact = router.find(Trigger.CLOUDEVENT, "com.example.order")
    assert exact is not None
    assert exact.name == "com.example.order"
    wildcard = router.find(Trigger.CLOUDEVENT, "com.example.other")
    assert wildcard is not None
    assert wildcard.name == "*"


def test_storage_registrations_for_disjoint_actions_coexist() -> None:
    router = Router()
    router.storage("b", actions=["created"])(_noop)
    router.storage("b", actions=["deleted"])(_noop)
    with pytest.raises(ConfigurationError):
        router.storage("b", actions=["deleted", "archived"])(_noop)


def test_schedule_validates_cron_fields() -> None:
    router = Router()
    with pytest.raises(ConfigurationError):
        router.schedule("nightly", cron="0 3 * *")
    router.schedule("nightly", cron="0 3 * * *")(_noop)
    reg = router.find(Trigger.SCHEDULE, "nightly")
    assert reg is not None
    assert reg.options["cron"] == "0 3 * * *"


def test_empty_registration_name_is_rejected() -> None:
    with pytest.raises(ConfigurationError):
        Router().queue("")(_noop)


def test_head_is_answered_by_get_and_other_methods_report_what_is_allowed() -> None:
    router = Router()
    pets = router.add_route("/pets/{pet_id:int}", _noop)
    listing = router.add_route("/pets", _noop, ("GET", "POST"))
    assert (router.match("GET", "/pets/7").route, router.match("GET", "/pets/7").params) == (
        pets,
        {"pet_id": 7},
    )
    assert router.match("POST", "/pets").route is listing
    assert router.match("HEAD", "/pets/7").route is pets
    missing = router.match("DELETE", "/pets")
    assert missing.route is None
    assert missing.allowed == frozenset({"GET", "HEAD", "POST"})


def test_the_first_registered_of_several_matching_templates_wins() -> None:
    router = Router()
    first = router.add_route("/files/{name}", _noop, name="first")
    router.add_route("/files/{name:int}", _noop, name="second")
    tail = router.add_route("/files/{rest:path}", _noop, name="tail")
    assert router.match("GET", "/files/7").route is first
    assert router.match("GET", "/files/a/b").route is tail
    # Among templates with parameters, a literal segment is no more specific than a
    # parameter: order decides (a template without parameters always wins).
    later = Router()
    param = later.add_route("/users/{id}/posts/{p}", _noop, name="param")
    later.add_route("/users/me/posts/{p}", _noop, name="literal")
    assert later.match("GET", "/users/me/posts/1").route is param
    exact = later.add_route("/users/me/posts/1", _noop, name="exact")
    assert later.match("GET", "/users/me/posts/1").route is exact


def test_a_path_tail_matches_zero_or_more_segments() -> None:
    router = Router()
    route = router.add_route("/static/{rest:path}", _noop)
    assert router.match("GET", "/static").params == {"rest": ""}
    assert router.match("GET", "/static/a/b/c").params == {"rest": "a/b/c"}
    assert route.match("/static/x") == {"rest": "x"}


def test_matching_a_late_route_among_many_walks_one_branch() -> None:
    router = Router()
    routes = [router.add_route(f"/r{i}/{{id:int}}", _noop, name=f"r{i}") for i in range(1000)]
    match = router.match("GET", "/r999/5")
    assert match.route is routes[-1]
    assert match.params == {"id": 5}
    assert router.match("GET", "/r1000/5").route is None


def test_routes_and_registrations_are_immutable_values() -> None:
    router = Router()
    route = router.add_route("/pets/{pet_id:int}", _noop, status=201)
    again = Router().add_route("/pets/{pet_id:int}", _noop, status=201)
    assert route == again
    assert hash(route) == hash(again)
    assert route != Router().add_route("/pets/{pet_id:int}", _noop, status=200)
    assert "path='/pets/{pet_id:int}'" in repr(route)
    with pytest.raises(AttributeError):
        route.status = 200
    router.register(Trigger.QUEUE, "orders", _noop, max_attempts=3)
    (reg,) = router.registrations
    assert reg.options == {"max_attempts": 3}
    with pytest.raises(AttributeError):
        del reg.name


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [
        ("/pets/1", "/pets/1"),
        ("/caf%C3%A9/%3F%23%20", "/café/?# "),
        (b"/caf%c3%a9", "/café"),
        (b"/caf\xc3\xa9", "/café"),  # raw UTF-8 in the request line
        ("/café%20x", "/café x"),  # text already decoded, with an escape left
        ("/100%25", "/100%"),
        ("/%2e%2E/x", "/../x"),  # dot segments are normalize_path's to refuse
        ("/a%00b", "/a\x00b"),  # and NUL
        ("/\ud800", "/\ud800"),  # text without escapes is not re-encoded
    ],
)
def test_decode_path_decodes_escapes_as_utf8(raw: str | bytes, decoded: str) -> None:
    assert decode_path(raw) == decoded


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("/pets%2F1", "encoded slash"),
        (b"/a%2fb", "encoded slash"),
        ("/%", "malformed"),
        ("/%4", "malformed"),
        ("/%zz", "malformed"),
        ("/%4g", "malformed"),
        ("/%%41", "malformed"),
        ("/files/%FF%FE", "not UTF-8"),
        ("/%C3", "not UTF-8"),
        (b"/\xff", "not UTF-8"),
        ("/\ud800%41", "not valid text"),
    ],
)
def test_decode_path_refuses_what_the_rule_refuses(raw: str | bytes, reason: str) -> None:
    with pytest.raises(MalformedEventError, match=reason) as info:
        decode_path(raw)
    assert info.value.code == "invalid_path"
    assert info.value.status == 400
