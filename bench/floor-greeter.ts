// The burst's floor (issue 12): the smallest greeter that does what the burst
// counts, against which the function's burst is read. For a Resource-mode add
// of a Member never greeted it claims (a status merge patch under the event's
// resourceVersion, as functions/claim.ts writes it, without the Event mark),
// logs the greeting line and answers 202 (the adapter asks for no reply);
// anything else, the claim's own echo included, is answered 204 with no API
// call. No Events, no convergence, no Express, no CloudEvents codec: less work
// than the function does, on purpose.
//
// CLAIM_VIA says how the claim reaches the API server, over the same
// keep-alive node:https pool either way:
//   https        the request built by hand;
//   client-node  built by @kubernetes/client-node's generated request factory
//                and read back by its response processor, the code the
//                function's claims run through (functions/kube-client.ts),
//                with the kubeconfig's credentials applied once at start-up.
// Environment: PORT, HOST, KUBECONFIG, CLAIM_VIA (default https).
import { Agent as PlainAgent, createServer, request as plainRequest, type IncomingMessage, type ServerResponse } from "node:http";
import { Agent as TlsAgent, request as tlsRequest } from "node:https";
import {
  createConfiguration,
  KubeConfig,
  PatchStrategy,
  ResponseContext,
  SelfDecodingBody,
  ServerConfiguration,
  wrapHttpLibrary,
  type RequestContext,
} from "@kubernetes/client-node";
import { CustomObjectsApiRequestFactory, CustomObjectsApiResponseProcessor } from "@kubernetes/client-node/dist/gen/apis/CustomObjectsApi.js";
import { COMPONENT } from "../functions/event-object.ts";
import { greetingFromEvent, readMemberEvent } from "../functions/member-event.ts";
import { MEMBER_GROUP, MEMBER_PLURAL, MEMBER_VERSION, memberPath, type Member } from "../functions/member.ts";
import { createLineWriter, greetingLine, serve, type Greeting } from "./greet.ts";

const via = process.env["CLAIM_VIA"] ?? "https";
if (via !== "https" && via !== "client-node") throw new Error(`CLAIM_VIA must be https or client-node, not ${via}`);
const kubeconfig = process.env["KUBECONFIG"]?.split(":").find((p) => p !== "");
if (kubeconfig === undefined) throw new Error("the floor greeter needs KUBECONFIG");

const kc = new KubeConfig();
kc.loadFromFile(kubeconfig);
const cluster = kc.getCurrentCluster();
if (cluster === null) throw new Error(`${kubeconfig} has no current cluster`);
const server = new URL(cluster.server);
const applied: { headers?: Record<string, unknown>; ca?: string | Buffer } = {};
await kc.applyToHTTPSOptions(applied);
const credentials = Object.entries(applied.headers ?? {}).map(([name, value]) => [name, String(value)] as const);
const secure = server.protocol === "https:";
// The stand-in API server of the tests speaks plain http (insecure-skip-tls-verify), a real one TLS.
const agent = secure
  ? new TlsAgent({ keepAlive: true, maxSockets: 16, ...(applied.ca === undefined ? {} : { ca: applied.ca }) })
  : new PlainAgent({ keepAlive: true, maxSockets: 16 });
const request = secure ? tlsRequest : plainRequest;

/** A request's or an answer's whole body. */
function readAll(message: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    message.on("data", (chunk: Buffer) => chunks.push(chunk));
    message.on("end", () => resolve(Buffer.concat(chunks)));
    message.on("error", reject);
  });
}

interface Answer {
  readonly status: number;
  readonly body: Buffer;
}
function send(method: string, path: string, headers: Record<string, string>, body: string | undefined): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const call = request({ hostname: server.hostname, port: server.port, method, path, headers, agent }, (response) => {
      readAll(response).then((body) => resolve({ status: response.statusCode ?? 0, body }), reject);
    });
    call.on("error", reject);
    call.end(body);
  });
}

interface ClaimBody {
  readonly metadata: { readonly resourceVersion: string };
  readonly status: { readonly team: string; readonly greeting: string; readonly greetedAt: string; readonly observedGeneration?: number };
}
type Claim = (member: Member, body: ClaimBody) => Promise<number>;

const byHand: Claim = async (member, body) => {
  const path = `${memberPath(member)}/status?fieldManager=${COMPONENT}`;
  const headers: Record<string, string> = { "content-type": PatchStrategy.MergePatch, accept: "application/json" };
  for (const [name, value] of credentials) headers[name] = value;
  const text = JSON.stringify(body);
  headers["content-length"] = String(Buffer.byteLength(text));
  const answer = await send("PATCH", path, headers, text);
  if (answer.status === 200) JSON.parse(answer.body.toString("utf8"));
  return answer.status;
};

const throughClient = (): Claim => {
  const sendContext = async (context: RequestContext): Promise<ResponseContext> => {
    const body = context.getBody();
    if (body !== undefined && typeof body !== "string") throw new Error("only JSON request bodies are sent here");
    const headers = context.getHeaders();
    if (body !== undefined) headers["content-length"] = String(Buffer.byteLength(body));
    const url = new URL(context.getUrl());
    const answer = await send(context.getHttpMethod(), `${url.pathname}${url.search}`, headers, body);
    return new ResponseContext(answer.status, {}, new SelfDecodingBody(Promise.resolve(answer.body)));
  };
  const configuration = createConfiguration({
    baseServer: new ServerConfiguration(cluster.server, {}),
    authMethods: {
      default: {
        getName: () => "credentials applied at start-up",
        applySecurityAuthentication: (context: RequestContext) => {
          for (const [name, value] of credentials) context.setHeaderParam(name, value);
        },
      },
    },
    httpApi: wrapHttpLibrary({ send: sendContext }),
  });
  const requests = new CustomObjectsApiRequestFactory(configuration);
  const responses = new CustomObjectsApiResponseProcessor();
  return async (member, body) => {
    const context = await requests.patchNamespacedCustomObjectStatus(
      MEMBER_GROUP,
      MEMBER_VERSION,
      member.namespace,
      MEMBER_PLURAL,
      member.name,
      body,
      undefined,
      COMPONENT,
    );
    context.setHeaderParam("Content-Type", PatchStrategy.MergePatch);
    const answer = await sendContext(context);
    // The processor throws an ApiException for anything but 200: its status is the answer.
    try {
      await responses.patchNamespacedCustomObjectStatusWithHttpInfo(answer);
      return 200;
    } catch {
      return answer.httpStatusCode;
    }
  };
};

const claim: Claim = via === "client-node" ? throughClient() : byHand;
const log = createLineWriter();

function answer(res: ServerResponse, status: number): void {
  res.writeHead(status, status === 202 ? { "content-length": "0" } : {});
  res.end();
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (req.method !== "POST") return answer(res, 200);
  const type = String(req.headers["ce-type"] ?? "");
  const id = String(req.headers["ce-id"] ?? "");
  const data: unknown = JSON.parse((await readAll(req)).toString("utf8"));
  const said = readMemberEvent({ specversion: "1.0", id, source: "-", type, data });
  if (said.kind !== "member" || said.change !== "add" || said.member.recordedGreeting !== undefined) return answer(res, 204);
  const { member } = said;
  const greeting: Greeting | undefined = greetingFromEvent(said);
  if (greeting === undefined || member.resourceVersion === undefined) return answer(res, 204);
  // A claim that does not reach the API server: try again later. Whatever else throws is the event's fault (400).
  const status = await claim(member, {
    metadata: { resourceVersion: member.resourceVersion },
    status: {
      team: member.team,
      greeting: greeting.text,
      greetedAt: new Date().toISOString(),
      ...(member.generation === undefined ? {} : { observedGeneration: member.generation }),
    },
  }).catch(() => 503);
  // Another delivery claimed it, or it is gone: nothing said. Anything else: try again later.
  if (status === 409 || status === 404) return answer(res, 204);
  if (status !== 200) return answer(res, 503);
  log.write(greetingLine(greeting, id, type));
  answer(res, 202);
}

serve(
  createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      log.write(`${JSON.stringify({ time: new Date().toISOString(), level: "error", msg: err instanceof Error ? err.message : String(err) })}\n`);
      if (!res.headersSent) answer(res, 400);
    });
  }),
  log,
);
