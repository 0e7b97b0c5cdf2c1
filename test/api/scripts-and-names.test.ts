/**
 * Scripts and names (issue 10, item 10): CRLF is made LF on save and reported; names refuse control,
 * bidi and invisible characters; an agent's event points only at a version of its own service.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestApi, type TestApi } from "../helpers/app";
import { agentToken, seedRelease, seedService } from "../helpers/seed";

let api: TestApi;
let agent: string;
const biz = 10;
const base = `/api/v1/bizs/${biz}`;

beforeAll(async () => {
  api = await createTestApi();
  expect((await api.call("POST", "/api/v1/bizs", { id: biz, name: "demo" })).status).toBe(201);
  await seedService(api, biz, "service_demo", [{ path: "/etc/demo.conf", content: "v=1\n" }]);
  await seedService(api, biz, "service_other", [{ path: "/etc/other.conf", content: "o=1\n" }]);
  agent = (await agentToken(api, biz, ["service_*"])).token;
});
afterAll(() => api?.close());

describe("scripts: Windows line endings", () => {
  it("makes CRLF LF on save for shell and python, and says so in the answer", async () => {
    const sh = await api.call("POST", `${base}/scripts`, { name: "tag_crlf", type: "shell", content: "#!/bin/bash\r\ntouch tag\r\n" });
    expect(sh.status).toBe(201);
    expect(sh.body.normalized).toEqual(["crlf"]);
    const stored = await api.call("GET", `${base}/scripts/${sh.body.id}/versions/${sh.body.version.id}`);
    expect(stored.body.content).toBe("#!/bin/bash\ntouch tag\n");

    const py = await api.call("POST", `${base}/scripts`, { name: "py_lf", type: "python", content: "print('ok')\n" });
    expect(py.body.normalized).toEqual([]);
    const v = await api.call("POST", `${base}/scripts/${py.body.id}/versions`, { content: "import os\r\nprint(os.getcwd())\r\n" });
    expect(v.status).toBe(201);
    expect(v.body).toMatchObject({ normalized: ["crlf"], content: "import os\nprint(os.getcwd())\n" });
    const edited = await api.call("PATCH", `${base}/scripts/${py.body.id}/versions/${v.body.id}`, { content: "print(1)\r\n" });
    expect(edited.body).toMatchObject({ normalized: ["crlf"], content: "print(1)\n" });
    const memoOnly = await api.call("PATCH", `${base}/scripts/${py.body.id}/versions/${v.body.id}`, { memo: "m" });
    expect(memoOnly.body.normalized).toEqual([]);
  });
});

describe("names: no control, bidi or invisible characters", () => {
  const hostile = ["evil\u202etxt.sh", "bell\u0007", "zero\u200bwidth", "line\u2028sep", "c1\u0085"];

  it("security: refuses them in script, script version, version, group and webhook names, naming the field", async () => {
    const script = await api.call("POST", `${base}/scripts`, { name: "ok_script", type: "shell", content: "echo ok\n" });
    for (const name of hostile) {
      const attempts: [string, string, unknown, string][] = [
        ["POST", `${base}/scripts`, { name, type: "shell", content: "echo\n" }, "name"],
        ["POST", `${base}/scripts`, { name: `s${Math.random()}`.replace(".", ""), type: "shell", content: "echo\n", versionName: name }, "versionName"],
        ["POST", `${base}/scripts/${script.body.id}/versions`, { name, content: "echo 2\n" }, "name"],
        ["POST", `${base}/apps/service_demo/versions`, { name }, "name"],
        ["POST", `${base}/groups`, { name, selector: "env=prod" }, "name"],
        ["POST", `${base}/apps/service_demo/webhooks`, { name, action: "release" }, "name"],
      ];
      for (const [method, path, body, field] of attempts) {
        const r = await api.call(method, path, body);
        expect(r.status, `${path} ${JSON.stringify(name)}`).toBe(400);
        expect(r.body.error.message).toMatch(new RegExp(`^${field}: `));
      }
    }
  });

  it("security: refuses them in service names and label keys (sent by admins and by agents)", async () => {
    for (const bad of ["svc\u202e", "svc\u0000", "svc\u200f"]) {
      expect((await api.call("POST", `${base}/apps`, { name: bad, configType: "file" })).status).toBe(400);
      expect((await api.call("POST", `${base}/groups`, { name: "g", selector: `${bad}=prod` })).status).toBe(400);
      const hb = await api.call("POST", `/feed/v1/bizs/${biz}/apps/service_demo/heartbeat`, { uid: "h1", currentReleaseId: null, labels: { [bad]: "x" } }, { token: agent });
      expect(hb.status).toBe(400);
    }
    // Unicode letters stay allowed where they were.
    expect((await api.call("POST", `${base}/groups`, { name: "équipe prod", selector: "env=prod" })).status).toBe(201);
  });
});

describe("events: releaseId of the service", () => {
  it("security: refuses an event or heartbeat naming another service's version (400), accepts its own", async () => {
    const mine = await seedRelease(api, biz, "service_demo", "E1");
    const theirs = await seedRelease(api, biz, "service_other", "O1");
    const feed = `/feed/v1/bizs/${biz}/apps/service_demo`;
    const foreign = await api.call("POST", `${feed}/events`, { uid: "h1", releaseId: theirs.id, status: "SUCCESS" }, { token: agent });
    expect(foreign.status).toBe(400);
    expect(foreign.body.error.message).toBe(`releaseId: version ${theirs.id} is not a version of service 'service_demo'`);
    expect((await api.call("POST", `${feed}/events`, { uid: "h1", releaseId: 999999, status: "FAILED" }, { token: agent })).status).toBe(400);
    expect((await api.call("POST", `${feed}/heartbeat`, { uid: "h1", currentReleaseId: theirs.id }, { token: agent })).status).toBe(400);
    expect((await api.call("POST", `${feed}/events`, { uid: "h1", releaseId: mine.id, status: "SUCCESS" }, { token: agent })).status).toBe(202);
    expect((await api.call("POST", `${feed}/events`, { uid: "h1", releaseId: null, status: "FAILED", message: "no version yet" }, { token: agent })).status).toBe(202);
    const listed = await api.call("GET", `${base}/apps/service_demo/clients/h1/events`);
    expect(listed.body.items.map((e: any) => e.release?.id ?? null)).toEqual([null, mine.id]);
  });
});
