// TypeDoc plugin: sorts the API reference into sections a newcomer reads in order (the robust client
// first, then messages and errors, then the low-level API, tracing, the command line), without a
// `@category` tag in every source file. Every export must be listed here: an unlisted one fails the
// docs build, so a new export cannot land in an unsorted heap.
import { Comment, CommentTag, Converter, ReflectionFlag } from 'typedoc';

export const SECTIONS = {
  'Robust client': [
    'createClient',
    'Client',
    'ClientOptions',
    'ClientEvents',
    'Publisher',
    'PublisherOptions',
    'PublisherEvents',
    'Subscription',
    'SubscribeOptions',
    'SubscriptionEvents',
    'SubscriptionHandler',
    'RetryOptions',
    'MessageIterator',
    'MessageIteratorOptions',
    'RpcOptions',
    'RpcHandler',
    'RpcReply',
    'RpcServerOptions',
    'TopologyEntity',
    'Backoff',
    'BackoffOptions',
    'BindOptions',
    'WaitOptions',
    'Logger',
    'ClientHealth',
    'ClientStats',
    'PublisherPublishOptions',
    'Credentials',
    'CredentialsProvider',
  ],
  Messages: [
    'Message',
    'MultipleOptions',
    'RequeueOptions',
    'BasicProperties',
    'ReturnedMessage',
    'FieldTable',
    'FieldValue',
    'FieldTypeTag',
    'Decimal',
    'TypedValue',
    'Codec',
    'CodecRegistry',
    'Decoded',
    'jsonCodec',
    'AmqpTimestamp',
    'fieldTypeOf',
  ],
  Errors: [
    'AMQPError',
    'AMQPErrorCode',
    'AMQPErrorOptions',
    'ConnectionError',
    'ConnectionClosedByServer',
    'HeartbeatTimeout',
    'SocketError',
    'HandshakeError',
    'AuthenticationError',
    'ChannelError',
    'ChannelClosedByServer',
    'ServerCloseDetails',
    'PublishNacked',
    'MessageReturned',
    'ReturnedMessageInfo',
    'FrameError',
    'TimeoutError',
    'ClosedError',
    'InvalidArgumentError',
    'AbortError',
    'ConsumerCancelled',
    'UserCodeError',
    'USER_CODE_ERROR_CODE',
    'ConnectionAttemptsExhausted',
    'CredentialsRefreshError',
    'PublisherFullError',
    'isHardError',
    'isSoftError',
    'REPLY_CODES',
    'AnyReplyCode',
    'ReplyCode',
    'HardReplyCode',
    'SoftReplyCode',
  ],
  'Low-level API': [
    'connect',
    'Connection',
    'ConnectionOptions',
    'ConnectionEvents',
    'AuthMechanism',
    'Channel',
    'ChannelEvents',
    'PublishOptions',
    'ConsumeOptions',
    'ExchangeDeclareOptions',
    'QueueDeclareOptions',
    'QueueDeclareResult',
    'CallOptions',
    'ExchangeArgumentOptions',
    'QueueArgumentOptions',
    'Consumer',
    'ConsumerEvents',
    'MessageHandler',
    'parseUrl',
    'redactUrl',
    'VERSION',
  ],
  Tracing: [
    'configureTracing',
    'tracingReady',
    'tracePublish',
    'traceProcess',
    'TracingOptions',
    'OpenTelemetryApi',
    'PublishSpanInfo',
    'ServerInfo',
    'configureMetrics',
    'MetricsOptions',
    'OtelMeterProvider',
  ],
};

/** The guides, each in the section it belongs to. */
const DOCUMENTS = {
  reliability: 'Guides',
  'migrating-from-amqplib': 'Guides',
  cli: 'Command line',
};

/** The event map of each emitter class, linked from the class's page. */
const EVENTS = {
  Client: 'ClientEvents',
  Publisher: 'PublisherEvents',
  Subscription: 'SubscriptionEvents',
  Connection: 'ConnectionEvents',
  Channel: 'ChannelEvents',
  Consumer: 'ConsumerEvents',
};

export const ORDER = ['Robust client', 'Messages', 'Errors', 'Low-level API', 'Tracing', 'Guides', 'Command line'];

// Members every EventEmitter has as statics; they say nothing about warren and bury its own members.
const EMITTER_STATICS = new Set([
  'captureRejections',
  'captureRejectionSymbol',
  'defaultMaxListeners',
  'errorMonitor',
  '[captureRejectionSymbol]',
]);

function tag(reflection, section) {
  reflection.comment ??= new Comment([]);
  reflection.comment.blockTags = reflection.comment.blockTags.filter((t) => t.tag !== '@category');
  reflection.comment.blockTags.push(new CommentTag('@category', [{ kind: 'text', text: section }]));
}

export function load(app) {
  const sectionOf = new Map();
  for (const [section, names] of Object.entries(SECTIONS)) for (const n of names) sectionOf.set(n, section);

  app.converter.on(Converter.EVENT_RESOLVE_BEGIN, (context) => {
    const project = context.project;
    for (const child of project.children ?? []) {
      const section = sectionOf.get(child.name);
      if (section === undefined) {
        app.logger.error(`docs/typedoc-plugin.mjs: the export '${child.name}' is in no section; add it to SECTIONS`);
        continue;
      }
      tag(child, section);
      // Inherited EventEmitter statics and util.inspect's hook: noise on every emitter's page. The
      // instance members (on, once, off…) are typed by the class's event map: shown, not hidden as
      // "external" (TypeDoc's default filter hides members declared in node_modules).
      for (const member of [...(child.children ?? [])]) {
        const inheritedStatic = member.flags.isStatic && member.inheritedFrom !== undefined;
        if (inheritedStatic || EMITTER_STATICS.has(member.name) || member.name === '[custom]') {
          project.removeReflection(member);
        } else if (member.flags.isExternal && member.inheritedFrom !== undefined) {
          member.setFlag(ReflectionFlag.External, false);
          for (const sig of member.signatures ?? []) sig.setFlag(ReflectionFlag.External, false);
        }
      }
      const events = EVENTS[child.name];
      const eventMap = events && project.children?.find((c) => c.name === events);
      if (eventMap) {
        child.comment.summary.push(
          { kind: 'text', text: '\n\nEvents (listen with `on`, `once`, `off`): ' },
          { kind: 'inline-tag', tag: '@link', text: events, target: eventMap },
          { kind: 'text', text: '.' },
        );
      }
    }
    // The page already has the project's name as its title; the README's own '# warren' would repeat it.
    const first = project.readme?.[0];
    if (first?.kind === 'text') first.text = first.text.replace(new RegExp(`^\\s*# ${project.name}\\s*\\n`), '');
    for (const doc of project.documents ?? []) {
      const section = DOCUMENTS[doc.name];
      if (section === undefined)
        app.logger.error(`docs/typedoc-plugin.mjs: the document '${doc.name}' is in no section`);
      else doc.frontmatter = { ...doc.frontmatter, category: section };
    }
  });
}
