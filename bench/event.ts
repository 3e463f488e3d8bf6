// The event the benchmark sends: a binary-mode ApiServerSource
// `dev.knative.apiserver.resource.add` for a Member, as the adapter delivers it
// (ce-* headers, the full object as JSON data, managedFields and all).

export const MEMBER_ADD_TYPE = "dev.knative.apiserver.resource.add";

export interface TestEvent {
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
  /** The greeting every implementation must answer with. */
  readonly greeting: string | undefined;
}

export interface MemberEventOptions {
  readonly type?: string;
  readonly name?: string;
  readonly namespace?: string;
  readonly team?: string;
  /** status.team: the team the member was last greeted into. */
  readonly recordedTeam?: string;
  readonly kind?: string;
  readonly id?: string;
}

export function memberEvent(options: MemberEventOptions = {}): Omit<TestEvent, "greeting"> {
  const type = options.type ?? MEMBER_ADD_TYPE;
  const name = options.name ?? "alice";
  const namespace = options.namespace ?? "default";
  const team = options.team ?? "platform";
  const kind = options.kind ?? "Member";
  const object = {
    apiVersion: "helloworld.apimeister.com/v1",
    kind,
    metadata: {
      annotations: {
        "kubectl.kubernetes.io/last-applied-configuration": `{"apiVersion":"helloworld.apimeister.com/v1","kind":"${kind}","metadata":{"annotations":{},"name":"${name}","namespace":"${namespace}"},"spec":{"memberOf":"${team}"}}\n`,
      },
      creationTimestamp: "2026-11-25T10:00:00Z",
      generation: 1,
      managedFields: [
        {
          apiVersion: "helloworld.apimeister.com/v1",
          fieldsType: "FieldsV1",
          fieldsV1: {
            "f:metadata": { "f:annotations": { ".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {} } },
            "f:spec": { ".": {}, "f:memberOf": {} },
          },
          manager: "kubectl-client-side-apply",
          operation: "Update",
          time: "2026-11-25T10:00:00Z",
        },
      ],
      name,
      namespace,
      resourceVersion: "48213",
      uid: "5b0b6a8e-3c1f-4a52-9d7e-2f1c8a6b9e10",
    },
    spec: { memberOf: team },
    ...(options.recordedTeam === undefined ? {} : { status: { team: options.recordedTeam } }),
  };
  return {
    headers: {
      "ce-specversion": "1.0",
      "ce-id": options.id ?? "0f6a5b1e-8d2c-4f4e-9a51-7c3e2b1d0a99",
      "ce-source": "https://10.96.0.1:443",
      "ce-type": type,
      "ce-subject": `/apis/helloworld.apimeister.com/v1/namespaces/${namespace}/members/${name}`,
      "ce-time": "2026-11-25T10:00:00.123456Z",
      "ce-kind": kind,
      "ce-name": name,
      "ce-namespace": namespace,
      "content-type": "application/json",
    },
    body: JSON.stringify(object),
  };
}

/** The benchmark's event: welcome alice to the team platform. */
export const benchEvent: TestEvent = { ...memberEvent(), greeting: "welcome alice to the team platform" };
