"""Every label of the console in Chinese and English, and money and dates formatted for each.

Pure: no I/O. Money is integer fen; pages show yuan with two decimals and the fen in a tooltip.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, get_args

Lang = Literal["zh", "en"]
LANGS: tuple[Lang, ...] = get_args(Lang)
DEFAULT_LANG: Lang = "zh"

LABELS: dict[str, tuple[str, str]] = {  # key: (中文, English)
    "console": ("flexledger 控制台", "flexledger console"),
    "login": ("登录", "Log in"),
    "logout": ("退出", "Log out"),
    "api_key": ("API 密钥", "API key"),
    "login_failed": ("密钥无效", "That key is not valid"),
    "logged_in_as": ("当前身份", "Logged in as"),
    "overview": ("概览", "Overview"),
    "subject": ("对象", "Subject"),
    "decision": ("决定", "Decision"),
    "payments": ("支付", "Payments"),
    "dead_letters": ("死信", "Dead letters"),
    "book": ("账簿", "Book"),
    "open": ("打开", "Open"),
    "service": ("服务", "Service"),
    "status": ("状态", "Status"),
    "progress": ("进度", "Progress"),
    "lag": ("积压（消息）", "Lag (messages)"),
    "reasons": ("原因", "Reasons"),
    "topic": ("主题", "Topic"),
    "reason": ("原因", "Reason"),
    "count": ("数量", "Count"),
    "refusals": ("被拒消息", "Refused messages"),
    "none": ("无", "none"),
    "subject_id": ("工人或企业标识", "Worker or enterprise identifier"),
    "as_of": ("截至", "As of"),
    "as_of_note": ("事实按当时已知，法规按当时有效", "facts known then × law in force then"),
    "decisions": ("决定", "Decisions"),
    "orders": ("支付指令", "Payment orders"),
    "kind": ("类型", "Kind"),
    "program": ("项目", "Programme"),
    "month": ("月份", "Month"),
    "amount": ("金额", "Amount"),
    "after_fact": ("依据事实", "After fact"),
    "explanation": ("说明", "Explanation"),
    "explanation_zh": ("说明（中文）", "Explanation (Chinese)"),
    "explanation_en": ("说明（英文）", "Explanation (English)"),
    "rule_set": ("规则集", "Rule set"),
    "state": ("状态", "State"),
    "beneficiary": ("收款人", "Beneficiary"),
    "fiscal_year": ("财政年度", "Fiscal year"),
    "all_years": ("全部年度", "all years"),
    "appropriated": ("拨款", "Appropriated"),
    "committed": ("已承诺", "Committed"),
    "paid": ("已支付", "Paid"),
    "available": ("可用", "Available"),
    "awaiting_budget": ("等待预算", "Awaiting budget"),
    "waiting_orders": ("等待中的指令", "Orders waiting"),
    "entries": ("拨付批次与结算", "Disbursement batches and settlements"),
    "batch": ("批次", "Batch"),
    "outcome": ("结果", "Outcome"),
    "trial_balance": ("试算平衡", "Trial balance"),
    "balanced": ("平衡", "balanced"),
    "unbalanced": ("不平衡", "NOT balanced"),
    "replay": ("重放", "Replay"),
    "run_replay": ("运行重放", "Run replay"),
    "reproduced": ("已复现", "Reproduced"),
    "chain_link": ("哈希链链接（前一哈希 → 本事件哈希）", "Hash-chain link (previous → this event's)"),
    "yes": ("是", "yes"),
    "no": ("否", "no"),
    "trace": ("追踪", "Trace"),
    "open_trace": ("在追踪查看器中打开", "Open in the trace viewer"),
    "evidence": ("证据包", "Evidence bundle"),
    "evidence_cli": ("用命令行导出：", "Export with the command line:"),
    "refused": ("无权查看", "Not allowed"),
    "refused_note": ("您的角色不能打开此页面。", "Your role may not open this page."),
    "not_found": ("未找到您可查看的内容", "Nothing here that you may see"),
    "unavailable": ("服务暂不可用", "Service unavailable"),
    "show_ids": ("显示身份证号（将记录审计）", "Show identity numbers (recorded)"),
    "masked_note": ("身份证号已遮蔽", "identity numbers masked"),
    "language": ("语言", "Language"),
    "facts": ("所依据的事实", "Facts it rests on"),
    "fact": ("事实", "Fact"),
    "reverses": ("撤销的决定", "Reverses"),
    "kept_letters": ("保留的死信", "Kept dead letters"),
    "redrives": ("重新投递", "Re-drives"),
    "redrive": ("重新投递", "Re-drive"),
    "redrive_accepted": ("已接收", "taken in"),
    "redrive_refused": ("仍被拒绝", "still refused"),
    "when": ("时间", "When"),
    "source": ("来源位置", "Source position"),
    "message": ("消息", "Message"),
    "checkpoint": ("最近的签名检查点", "Last signed checkpoint"),
    "age": ("距今", "age"),
    "open_lines": ("未结清", "Open"),
    "closed_lines": ("已结清", "Closed"),
    "proof": ("签名检查点与包含证明", "Signed checkpoint and inclusion proof"),
    "tree_size": ("树大小（事件数）", "Tree size (events)"),
    "root_hash": ("根哈希", "Root hash"),
    "signed_at": ("签名时间", "Signed at"),
    "signature_ok": ("签名有效", "Signature valid"),
    "key_id": ("签名密钥", "Signing key"),
    "stored_event": ("存储的事件", "Stored event"),
    "leaf_index": ("叶索引", "Leaf index"),
    "leaf_hash": ("叶哈希", "Leaf hash"),
    "audit_path": ("审计路径（自下而上）", "Audit path (lowest first)"),
    "included": ("包含于该树", "Included in the tree"),
    "not_covered": ("尚未被签名检查点覆盖，请等待下一个检查点",
        "Not yet covered by a signed checkpoint: wait for the next one"),
    "not_in_ledger": ("账本中尚无此决定的事件", "The decision's event is not in the ledger yet"),
    "download_evidence": ("下载证据包（JSON）", "Download the evidence bundle (JSON)"),
    "download_evidence_clear": ("下载含身份证号的证据包（将记录审计）",
        "Download it with identity numbers (recorded)"),
    "evidence_verify": ("离线校验：", "Check it offline:"),
    "known_as_of": ("已知截至", "Known as of"),
    "known_note": ("账本当时已记录的事实与决定", "the facts and decisions the ledger had recorded then"),
    "law_as_of": ("法规截至", "Law as of"),
    "law_note": ("当日有效的规则参数，及所涉期间不晚于该日的决定",
        "the rule parameters in force that day, and the decisions about periods up to it"),
    "law_in_force": ("有效的法规参数", "Law in force on"),
    "parameter": ("参数", "Parameter"),
    "value": ("值", "Value"),
    "since": ("生效日期", "In force since"),
    "legal_source": ("法律依据", "Legal source"),
    "recorded_at": ("记录时间", "Recorded at"),
    "contents": ("内容", "Contents"),
    "says": ("含义", "What it says"),
    "facts_known": ("事实（按记录顺序）", "Facts (in the order recorded)"),
    "facts_pseudonymised": ("假名化角色不显示事实内容",
        "Fact contents are not shown to a pseudonymised role"),
    "orders_of_shown": ("所示决定的支付指令，状态为当前状态",
        "the orders of the decisions shown, in their states now"),
    "now": ("现在", "now"),
    "today": ("今天", "today"),
}
# Values the services send as codes (decision kinds, programmes, order states), shown translated.
VALUES: dict[str, tuple[str, str]] = {
    "grant": ("发放", "grant"), "clawback": ("追回", "clawback"), "extension": ("延期", "extension"),
    "extension_revoked": ("撤销延期", "extension revoked"), "statistic": ("统计", "statistic"),
    "statistic_revoked": ("撤销统计", "statistic revoked"), "recognition": ("认定", "recognition"),
    "recognition_revoked": ("撤销认定", "recognition revoked"), "rejected": ("拒绝", "rejected"),
    "employment_service": ("就业服务补贴", "employment service subsidy"),
    "social_insurance": ("社会保险补贴", "social insurance subsidy"),
    "training": ("培训补贴", "training subsidy"),
    "job_standard": ("岗位标准补贴", "job standard subsidy"),
    "skill_competition": ("技能竞赛奖励", "skill competition award"),
    "park_construction": ("园区建设补贴", "park construction subsidy"),
    "talent": ("人才补贴", "talent subsidy"),
    "new_employment": ("新就业（统计）", "new employment (statistics)"),
    "awaiting_budget": ("等待预算", "awaiting budget"), "ready": ("待拨付", "ready"),
    "in_transit": ("拨付中", "in transit"), "paid": ("已支付", "paid"), "cancelled": ("已取消", "cancelled"),
    "settled": ("已结算", "settled"), "returned": ("被退回", "returned"), "accepted": ("已接受", "accepted"),
}
assert all(len(pair) == len(LANGS) and all(pair) for pair in (*LABELS.values(), *VALUES.values()))


def label(key: str, lang: Lang) -> str:
    return LABELS[key][LANGS.index(lang)]


def value(code: object, lang: Lang) -> str:
    """A code the services send (a decision kind, a programme, an order state) in `lang`; else as is."""
    text = "" if code is None else str(code)
    pair = VALUES.get(text)
    return pair[LANGS.index(lang)] if pair else text


def yuan(fen: int | None, lang: Lang) -> str:
    """Fen as yuan with two decimals: `1,234.56 元` (zh) or `CNY 1,234.56` (en); '' for None."""
    if fen is None:
        return ""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(int(fen)), 100)
    figure = f"{sign}{whole:,}.{cents:02d}"
    return f"{figure} 元" if lang == "zh" else f"CNY {figure}"


def when(value: str | None, lang: Lang) -> str:
    """An ISO timestamp as `2026年12月03日 21:30` (zh) or `3 Dec 2026 21:30` (en), UTC as stored."""
    if not value:
        return ""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    if lang == "zh":
        return f"{moment.year}年{moment.month:02d}月{moment.day:02d}日 {moment:%H:%M}"
    return f"{moment.day} {moment:%b %Y %H:%M}"


def chosen(value: str | None) -> Lang:
    return "en" if value == "en" else "zh"
