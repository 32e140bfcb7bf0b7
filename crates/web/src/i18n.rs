//! Translations: zh-CN and en complete, zh-TW for what has been translated (falls back to
//! zh-CN, then en). Keys are flat strings; a test checks every key has zh-CN and en.

/// (key, en, zh-CN, zh-TW — empty means fall back to zh-CN)
pub const MESSAGES: &[(&str, &str, &str, &str)] = &[
    ("app.name", "Guanxi CRM", "关系 CRM", "關係 CRM"),
    ("nav.home", "Home", "首页", "首頁"),
    ("nav.customers", "Customers", "客户", "客戶"),
    ("nav.sales", "Sales", "销售", "銷售"),
    ("nav.marketing", "Marketing", "市场", "市場"),
    ("nav.service", "Service", "服务", "服務"),
    ("nav.analytics", "Analytics", "分析", "分析"),
    ("nav.admin", "Administration", "系统管理", "系統管理"),
    ("nav.users", "Users", "用户", "使用者"),
    ("nav.teams", "Teams", "团队", "團隊"),
    ("nav.custom_fields", "Custom fields", "自定义字段", "自訂欄位"),
    (
        "cf.intro",
        "Fields your company adds to accounts and contacts. They appear in forms, record pages, list columns and filters, import and export, and the API's custom object. Archiving a field hides it and keeps its values.",
        "公司为客户和联系人添加的字段，会出现在表单、详情页、列表列与筛选、导入导出以及 API 的 custom 对象中。归档字段会将其隐藏，但保留已有数据。",
        "公司為客戶和聯絡人新增的欄位，會出現在表單、詳情頁、清單欄與篩選、匯入匯出以及 API 的 custom 物件中。封存欄位會將其隱藏，但保留已有資料。",
    ),
    ("cf.label", "Label", "名称", "名稱"),
    ("cf.label_en", "English label", "英文名称", "英文名稱"),
    (
        "cf.label_zh_tw",
        "Traditional Chinese label (shown in 繁體; default: the main label)",
        "繁体中文名称（繁體界面显示；默认用主名称）",
        "繁體中文名稱（繁體介面顯示；預設用主名稱）",
    ),
    ("cf.key", "Key", "标识", "識別碼"),
    ("cf.kind", "Type", "类型", "類型"),
    ("cf.section", "Group", "分组", "分組"),
    ("cf.rules", "Rules", "规则", "規則"),
    ("cf.entity", "Record", "记录类型", "紀錄類型"),
    ("cf.options", "Choices (one per line)", "选项（每行一个）", "選項（每行一個）"),
    ("cf.options_hint", "Only for single or multiple choice", "仅用于单选或多选", "僅用於單選或多選"),
    ("cf.default", "Default", "默认值", "預設值"),
    ("cf.position", "Order", "排序", "排序"),
    ("cf.required", "Required", "必填", "必填"),
    ("cf.unique", "Unique", "唯一", "唯一"),
    ("cf.archived", "Archived", "已归档", "已封存"),
    ("cf.none", "No custom fields yet.", "还没有自定义字段。", "還沒有自訂欄位。"),
    ("cf.new", "New custom field", "新建自定义字段", "新增自訂欄位"),
    ("cf.kind.text", "Text", "文本", "文字"),
    ("cf.kind.long_text", "Long text", "多行文本", "多行文字"),
    ("cf.kind.number", "Number", "数字", "數字"),
    ("cf.kind.money", "Money", "金额", "金額"),
    ("cf.kind.date", "Date", "日期", "日期"),
    ("cf.kind.datetime", "Date and time", "日期时间", "日期時間"),
    ("cf.kind.boolean", "Yes / no", "是 / 否", "是 / 否"),
    ("cf.kind.select", "Single choice", "单选", "單選"),
    ("cf.kind.multi_select", "Multiple choice", "多选", "多選"),
    ("cf.kind.user", "User", "用户", "使用者"),
    ("cf.kind.url", "Web address", "网址", "網址"),
    ("cf.kind.email", "Email", "邮箱", "電子郵件"),
    ("cf.kind.phone", "Phone", "电话", "電話"),
    ("nav.tokens", "API tokens", "API 令牌", "API 權杖"),
    ("nav.audit", "Audit log", "审计日志", "稽核日誌"),
    ("nav.jobs", "Outbox & jobs", "发件箱与任务", "寄件匣與任務"),
    ("nav.settings", "Company settings", "公司设置", "公司設定"),
    ("nav.account", "My account", "我的账户", "我的帳戶"),
    ("nav.api_docs", "API docs", "API 文档", "API 文件"),
    ("nav.coming", "Coming soon", "即将推出", "即將推出"),
    ("auth.sign_in", "Sign in", "登录", "登入"),
    ("auth.sign_out", "Sign out", "退出登录", "登出"),
    (
        "auth.sign_out_everywhere",
        "Sign out everywhere",
        "退出所有设备",
        "登出所有裝置",
    ),
    (
        "auth.revoke_api_tokens",
        "Also revoke my API tokens (integrations using them stop working)",
        "同时吊销我的 API 令牌（使用它们的集成将停止工作）",
        "同時撤銷我的 API 權杖（使用它們的整合將停止運作）",
    ),
    (
        "auth.sign_up",
        "Sign up your company",
        "注册公司",
        "註冊公司",
    ),
    ("auth.email", "Email", "邮箱", "電子郵件"),
    ("auth.password", "Password", "密码", "密碼"),
    (
        "auth.current_password",
        "Current password",
        "当前密码",
        "目前密碼",
    ),
    ("auth.new_password", "New password", "新密码", "新密碼"),
    (
        "auth.change_password",
        "Change password",
        "修改密码",
        "變更密碼",
    ),
    (
        "auth.forgot",
        "Forgot password?",
        "忘记密码？",
        "忘記密碼？",
    ),
    (
        "auth.send_link",
        "Send reset link",
        "发送重置链接",
        "傳送重設連結",
    ),
    (
        "auth.link_sent",
        "If the address is known, a link is on its way.",
        "如果该邮箱已注册，重置链接已发送。",
        "如果該電子郵件已註冊，重設連結已寄出。",
    ),
    (
        "auth.set_password",
        "Choose your password",
        "设置密码",
        "設定密碼",
    ),
    ("auth.company", "Company name", "公司名称", "公司名稱"),
    ("auth.your_name", "Your name", "您的姓名", "您的姓名"),
    (
        "auth.bad_credentials",
        "Wrong email or password.",
        "邮箱或密码错误。",
        "電子郵件或密碼錯誤。",
    ),
    (
        "auth.no_account",
        "New to Guanxi?",
        "还没有账号？",
        "還沒有帳號？",
    ),
    (
        "auth.have_account",
        "Already have an account?",
        "已有账号？",
        "已有帳號？",
    ),
    (
        "home.welcome",
        "Welcome, {name}",
        "欢迎，{name}",
        "歡迎，{name}",
    ),
    (
        "home.intro",
        "One shared record of every customer and every touch.",
        "每一位客户、每一次接触，都在同一份记录里。",
        "每一位客戶、每一次接觸，都在同一份紀錄裡。",
    ),
    ("common.save", "Save", "保存", "儲存"),
    ("common.create", "Create", "创建", "建立"),
    ("common.delete", "Delete", "删除", "刪除"),
    ("common.edit", "Edit", "编辑", "編輯"),
    ("common.filter", "Filter", "筛选", "篩選"),
    ("common.next_page", "Next page", "下一页", "下一頁"),
    ("common.name", "Name", "名称", "名稱"),
    ("common.status", "Status", "状态", "狀態"),
    ("common.none", "None", "无", "無"),
    ("common.all", "All", "全部", "全部"),
    ("common.yes", "Yes", "是", "是"),
    ("common.no", "No", "否", "否"),
    ("common.language", "Language", "语言", "語言"),
    ("common.saved", "Saved.", "已保存。", "已儲存。"),
    (
        "common.errors",
        "Please correct the fields marked below.",
        "请修正下方标出的字段。",
        "請修正下方標示的欄位。",
    ),
    ("users.new", "New user", "新建用户", "新增使用者"),
    ("users.role", "Role", "角色", "角色"),
    ("role.admin", "Administrator", "管理员", "管理員"),
    ("role.manager", "Manager", "经理", "經理"),
    ("role.sales", "Sales", "销售", "銷售"),
    ("role.marketing", "Marketing", "市场", "市場"),
    ("role.service", "Service", "服务", "服務"),
    ("role.read_only", "Read-only", "只读", "唯讀"),
    ("users.team", "Team", "团队", "團隊"),
    ("users.active", "Active", "启用", "啟用"),
    ("users.deactivate", "Deactivate", "停用", "停用"),
    ("users.activate", "Activate", "启用", "啟用"),
    (
        "users.invite_hint",
        "Leave the password empty to email an invitation.",
        "密码留空则发送邀请邮件。",
        "密碼留空則寄送邀請郵件。",
    ),
    ("users.invited", "Invited", "已邀请", "已邀請"),
    (
        "users.search",
        "Name or email",
        "姓名或邮箱",
        "姓名或電子郵件",
    ),
    ("teams.new", "New team", "新建团队", "新增團隊"),
    ("teams.members", "Members", "成员", "成員"),
    (
        "tokens.new",
        "New API token",
        "新建 API 令牌",
        "新增 API 權杖",
    ),
    (
        "tokens.copy_now",
        "Copy this token now; it will not be shown again:",
        "请立即复制此令牌，之后不会再显示：",
        "請立即複製此權杖，之後不會再顯示：",
    ),
    ("tokens.revoke", "Revoke", "吊销", "撤銷"),
    ("tokens.revoked", "Revoked", "已吊销", "已撤銷"),
    ("tokens.last_used", "Last used", "最近使用", "最近使用"),
    (
        "tokens.expires_in_days",
        "Expires in (days)",
        "有效期（天）",
        "有效期（天）",
    ),
    ("audit.at", "When", "时间", "時間"),
    ("audit.actor", "Who", "操作人", "操作人"),
    ("audit.action", "Action", "操作", "操作"),
    ("audit.entity", "Record", "记录", "紀錄"),
    (
        "audit.changes",
        "Before → after",
        "修改前 → 修改后",
        "修改前 → 修改後",
    ),
    ("jobs.retry", "Retry", "重试", "重試"),
    ("jobs.kind", "Kind", "类型", "類型"),
    ("jobs.attempts", "Attempts", "尝试次数", "嘗試次數"),
    ("jobs.last_error", "Last error", "最近错误", "最近錯誤"),
    ("settings.time_zone", "Time zone", "时区", "時區"),
    ("settings.currency", "Currency", "货币", "貨幣"),
    (
        "settings.locale",
        "Default language",
        "默认语言",
        "預設語言",
    ),
    (
        "account.follow_browser",
        "Follow the browser",
        "跟随浏览器",
        "跟隨瀏覽器",
    ),
    ("common.cancel", "Cancel", "取消", "取消"),
    ("common.updated_at", "Updated", "更新时间", "更新時間"),
    ("common.created_at", "Created", "创建时间", "建立時間"),
    ("common.tags", "Tags", "标签", "標籤"),
    ("import.target", "Import into", "导入到", "匯入到"),
    ("import.status.running", "importing…", "正在导入……", "正在匯入……"),
    ("import.status.done", "finished", "已完成", "已完成"),
    ("import.status.failed", "failed", "失败", "失敗"),
    ("import.status.interrupted", "interrupted (the server restarted)", "已中断（服务器曾重启）", "已中斷（伺服器曾重新啟動）"),
    ("import.rerun", "Run it again", "重新导入", "重新匯入"),
    (
        "import.rerun_safe",
        "Rows already in are found and skipped: nothing is doubled.",
        "已导入的行会被识别并跳过，不会重复。",
        "已匯入的列會被識別並略過，不會重複。",
    ),
    ("import.another", "Import another file", "导入其他文件", "匯入其他檔案"),
    ("import.recent", "Your recent imports", "最近的导入", "最近的匯入"),
    ("import.header", "Column in the file", "文件中的列", "檔案中的欄"),
    ("import.field", "Goes to", "对应字段", "對應欄位"),
    ("import.go_mapped", "Import with this mapping", "按此对应关系导入", "依此對應關係匯入"),
    ("import.f.account", "Company (by name)", "公司（按名称）", "公司（依名稱）"),
    ("import.f.parent", "Parent account (by name)", "上级客户（按名称）", "上級客戶（依名稱）"),
    ("import.f.contact", "Contact (by name)", "联系人（按姓名）", "聯絡人（依姓名）"),
    ("import.f.product", "Product name", "商品名称", "商品名稱"),
    ("field.status", "Status", "状态", "狀態"),
    ("field.currency", "Currency", "币种", "幣別"),
    (
        "err.no_number_column",
        "has no order number column",
        "缺少订单号列",
        "缺少訂單號欄",
    ),
    ("err.not_xlsx", "is not an XLSX workbook", "不是 XLSX 工作簿", "不是 XLSX 活頁簿"),
    (
        "err.file_too_large",
        "is larger than the 10 MB an upload may be: split it, or import it on the server with `guanxi import`",
        "超过上传上限 10 MB：请拆分文件，或在服务器上用 `guanxi import` 导入",
        "超過上傳上限 10 MB：請分割檔案，或在伺服器上用 `guanxi import` 匯入",
    ),
    (
        "upload.too_large",
        "The file is larger than the 10 MB an upload may be: split it, or import it on the server with `guanxi import`.",
        "文件超过上传上限 10 MB：请拆分文件，或在服务器上用 `guanxi import` 导入。",
        "檔案超過上傳上限 10 MB：請分割檔案，或在伺服器上用 `guanxi import` 匯入。",
    ),
    ("common.back", "Back", "返回", "返回"),
    ("err.unreadable_upload", "could not be read as an upload; try again", "上传内容无法读取，请重试", "上傳內容無法讀取，請重試"),
    ("err.xlsx_too_large", "inflates to more than a workbook may (1 GiB, or 200 times its compressed size): a damaged or hostile file", "解压后超出工作簿上限（1 GiB，或压缩大小的 200 倍）：文件损坏或不安全", "解壓後超出活頁簿上限（1 GiB，或壓縮大小的 200 倍）：檔案損壞或不安全"),
    ("err.cell_too_long", "has a cell longer than 32,767 characters", "有单元格超过 32,767 个字符", "有儲存格超過 32,767 個字元"),
    ("err.too_many_columns", "has more than 1,024 columns", "超过 1,024 列", "超過 1,024 欄"),
    ("err.too_many_rows", "has more than 1,048,576 rows; split the file", "超过 1,048,576 行，请拆分文件", "超過 1,048,576 列，請分割檔案"),
    ("assets.title", "Assets", "资产", "資產"),
    ("assets.new", "Add an asset", "添加资产", "新增資產"),
    ("assets.name", "Name", "名称", "名稱"),
    ("assets.serial", "Serial / number", "序列号 / 号码", "序號 / 號碼"),
    ("assets.kind", "Type", "类型", "類型"),
    ("assets.kind.product", "Product", "产品", "產品"),
    ("assets.kind.service", "Service", "服务", "服務"),
    ("assets.kind.subscription", "Subscription", "订阅", "訂閱"),
    ("assets.status.active", "active", "在用", "使用中"),
    ("assets.status.suspended", "suspended", "暂停", "暫停"),
    ("assets.status.ended", "ended", "已结束", "已結束"),
    ("assets.started_on", "Start", "开始日期", "開始日期"),
    ("assets.ends_on", "End", "结束日期", "結束日期"),
    ("assets.warranty_until", "Warranty until", "保修至", "保固至"),
    ("assets.account_id", "Customer", "客户", "客戶"),
    ("assets.contact_id", "Contact", "联系人", "聯絡人"),
    (
        "err.before_start",
        "is before the start date",
        "早于开始日期",
        "早於開始日期",
    ),
    ("field.tags", "Tags", "标签", "標籤"),
    ("sort.by", "Sort: ", "排序：", "排序："),
    ("views.all", "All", "全部", "全部"),
    ("views.shared", "shared", "共享", "共用"),
    ("views.save", "Save this view", "保存为视图", "儲存為檢視"),
    ("views.name", "View name", "视图名称", "檢視名稱"),
    ("views.share", "Share with everyone", "共享给所有人", "共用給所有人"),
    ("views.field.name", "View name", "视图名称", "檢視名稱"),
    ("views.field.query", "Filters", "筛选条件", "篩選條件"),
    ("views.field.shared", "Sharing", "共享", "共用"),
    ("views.more_filters", "More filters", "更多筛选", "更多篩選"),
    ("views.columns", "Columns", "显示列", "顯示欄"),
    ("bulk.selected", "Ticked records:", "勾选的记录：", "勾選的紀錄："),
    ("bulk.assign", "Assign to", "分配给", "指派給"),
    ("bulk.tag", "Add tag", "添加标签", "新增標籤"),
    ("bulk.untag", "Remove tag", "移除标签", "移除標籤"),
    ("bulk.delete", "Move to trash", "移到回收站", "移到資源回收筒"),
    ("bulk.apply", "Apply", "执行", "執行"),
    ("field.ids", "Selection", "勾选", "勾選"),
    ("field.action", "Action", "操作", "操作"),
    ("field.tag", "Tag", "标签", "標籤"),
    (
        "bulk.result",
        "{done} changed, {failed} could not be changed.",
        "已处理 {done} 条，{failed} 条未能处理。",
        "已處理 {done} 筆，{failed} 筆未能處理。",
    ),
    (
        "home.customers",
        "Accounts, contacts and the one search box",
        "客户、联系人和统一搜索",
        "客戶、聯絡人和統一搜尋",
    ),
    (
        "sort.auto",
        "Sort: name (a search: newest first)",
        "排序：名称（搜索时最新在前）",
        "排序：名稱（搜尋時最新在前）",
    ),
    ("sort.name", "Sort: name", "排序：名称", "排序：名稱"),
    (
        "sort.-updated_at",
        "Sort: recently updated",
        "排序：最近更新",
        "排序：最近更新",
    ),
    (
        "sort.-created_at",
        "Sort: newest",
        "排序：最新创建",
        "排序：最新建立",
    ),
    ("gender.male", "Male", "男", "男"),
    ("gender.female", "Female", "女", "女"),
    ("section.basic", "Basic information", "基本信息", "基本資訊"),
    ("section.contact", "Contact details", "联系方式", "聯絡方式"),
    ("section.address", "Address", "地址", "地址"),
    (
        "section.personal",
        "Personal information",
        "个人信息",
        "個人資訊",
    ),
    ("section.management", "Management", "管理信息", "管理資訊"),
    ("section.sales", "Sales information", "销售信息", "銷售資訊"),
    ("section.image", "Image and preferences", "形象与偏好", "形象與偏好"),
    ("section.custom", "Other fields", "其他信息", "其他資訊"),
    (
        "section.evaluation",
        "Evaluation and notes",
        "评价信息",
        "評價資訊",
    ),
    ("field.name", "Name", "名称", "名稱"),
    ("field.parent_id", "Parent account", "上级客户", "上級客戶"),
    (
        "field.credit_code",
        "Unified social credit code",
        "统一社会信用代码",
        "統一社會信用代碼",
    ),
    ("field.industry", "Industry", "行业", "行業"),
    ("field.grade", "Grade", "客户等级", "客戶等級"),
    ("field.source", "Source", "来源", "來源"),
    ("field.phone", "Phone", "电话", "電話"),
    ("field.email", "Email", "邮箱", "電子郵件"),
    ("field.wechat", "WeChat", "微信号", "微信號"),
    ("field.website", "Website", "网址", "網址"),
    ("field.country", "Country", "国家/地区", "國家/地區"),
    ("field.province", "Province", "省", "省"),
    ("field.city", "City", "市", "市"),
    ("field.district", "District", "区/县", "區/縣"),
    ("field.address", "Street address", "详细地址", "詳細地址"),
    ("field.postal_code", "Postal code", "邮编", "郵遞區號"),
    ("field.owner_id", "Owner", "负责人", "負責人"),
    ("field.description", "Description", "描述", "描述"),
    ("field.family_name", "Family name", "姓", "姓"),
    ("field.given_name", "Given name", "名", "名"),
    ("field.account_id", "Account", "所属客户", "所屬客戶"),
    ("field.title", "Job title", "职位", "職位"),
    ("field.department", "Department", "部门", "部門"),
    ("field.gender", "Gender", "性别", "性別"),
    ("field.birthday", "Birthday", "生日", "生日"),
    ("field.notes", "Notes", "备注", "備註"),
    ("customers.accounts", "Accounts", "客户", "客戶"),
    ("customers.contacts", "Contacts", "联系人", "聯絡人"),
    (
        "customers.new_account",
        "New account",
        "新建客户",
        "新增客戶",
    ),
    (
        "customers.new_contact",
        "New contact",
        "新建联系人",
        "新增聯絡人",
    ),
    ("customers.trash", "Trash", "回收站", "資源回收筒"),
    (
        "customers.in_trash",
        "In the trash",
        "已在回收站",
        "已在資源回收筒",
    ),
    (
        "customers.to_trash",
        "Move to trash",
        "移到回收站",
        "移到資源回收筒",
    ),
    ("customers.restore", "Restore", "恢复", "還原"),
    ("customers.search", "Search", "搜索", "搜尋"),
    (
        "customers.search_placeholder",
        "Name, pinyin, phone, email…",
        "姓名、拼音、电话、邮箱…",
        "姓名、拼音、電話、電子郵件…",
    ),
    (
        "customers.no_results",
        "Nothing found.",
        "没有找到。",
        "沒有找到。",
    ),
    ("customers.none_yet", "None yet.", "暂无。", "暫無。"),
    ("customers.hierarchy", "Hierarchy", "层级", "層級"),
    (
        "customers.no_children",
        "No subsidiaries.",
        "没有下级客户。",
        "沒有下級客戶。",
    ),
    (
        "customers.add_child",
        "Add a subsidiary",
        "添加下级客户",
        "新增下級客戶",
    ),
    ("customers.kind.account", "Account", "客户", "客戶"),
    ("customers.kind.contact", "Contact", "联系人", "聯絡人"),
    ("customers.panel.timeline", "Timeline", "时间线", "時間軸"),
    ("customers.panel.orders", "Orders", "订单", "訂單"),
    ("customers.panel.deals", "Deals", "商机", "商機"),
    (
        "customers.panel.tickets",
        "Service tickets",
        "服务工单",
        "服務工單",
    ),
    (
        "customers.panel.grade",
        "Grade and points",
        "等级与积分",
        "等級與積分",
    ),
    ("activity.kind", "Type", "类型", "類型"),
    ("activity.kind.call", "Call", "电话", "電話"),
    ("activity.kind.email", "Email", "邮件", "郵件"),
    ("activity.kind.meeting", "Meeting", "会议", "會議"),
    ("activity.kind.visit", "Visit", "拜访", "拜訪"),
    ("activity.kind.note", "Note", "备注", "備註"),
    ("activity.kind.task", "Task", "任务", "任務"),
    ("activity.kind.transfer", "Transfer", "转移", "轉移"),
    ("activity.kind.create", "Created", "创建", "建立"),
    ("activity.kind.delete", "Trash", "删除", "刪除"),
    ("activity.kind.restore", "Restored", "恢复", "還原"),
    ("activity.kind.merge", "Merge", "合并", "合併"),
    ("activity.kind.unmerge", "Merge undone", "撤销合并", "撤銷合併"),
    (
        "history.unmerge",
        "A merge into this record was undone; the other record is back.",
        "撤销了并入本记录的合并，另一条记录已恢复。",
        "撤銷了併入本紀錄的合併，另一筆紀錄已恢復。",
    ),
    ("activity.occurred_at", "When", "时间", "時間"),
    ("activity.edit", "Edit", "编辑", "編輯"),
    (
        "activity.assignee_may_complete",
        "You are the assignee: you may mark it done; its owner changes the rest.",
        "您是执行人：可以标记完成；其他内容由负责人修改。",
        "您是執行人：可以標記完成；其他內容由負責人修改。",
    ),
    ("activity.subject", "Subject", "主题", "主題"),
    (
        "activity.body",
        "What was said or promised",
        "沟通内容或承诺",
        "溝通內容或承諾",
    ),
    (
        "activity.task_fields",
        "Task: due time, reminder, assignee",
        "任务：截止时间、提醒、执行人",
        "任務：截止時間、提醒、執行人",
    ),
    ("activity.due_at", "Due", "截止", "截止"),
    ("activity.remind_at", "Remind at", "提醒时间", "提醒時間"),
    ("activity.assignee_id", "Assignee", "执行人", "執行人"),
    ("activity.account_id", "Account", "客户", "客戶"),
    ("activity.contact_id", "Contact", "联系人", "聯絡人"),
    ("activity.done", "Done", "已完成", "已完成"),
    ("activity.mark_done", "Mark done", "标记完成", "標記完成"),
    ("activity.log", "Log", "记录", "記錄"),
    ("activity.older", "Older", "更早", "更早"),
    (
        "history.create",
        "created the record",
        "创建了此记录",
        "建立了此記錄",
    ),
    (
        "history.transfer",
        "handed the record to",
        "将负责人变更为",
        "將負責人變更為",
    ),
    (
        "history.delete",
        "moved the record to the trash",
        "将此记录移到回收站",
        "將此記錄移到資源回收筒",
    ),
    (
        "history.restore",
        "restored the record",
        "恢复了此记录",
        "還原了此記錄",
    ),
    (
        "history.merge",
        "merged another record into this one",
        "将其他记录合并到此记录",
        "將其他記錄合併到此記錄",
    ),
    ("history.system", "System", "系统", "系統"),
    ("tasks.mine", "My tasks", "我的任务", "我的任務"),
    ("tasks.open", "Open", "待办", "待辦"),
    ("tasks.done", "Done", "已完成", "已完成"),
    ("tasks.none", "No tasks.", "没有任务。", "沒有任務。"),
    (
        "err.only_for_tasks",
        "applies to tasks only",
        "仅适用于任务",
        "僅適用於任務",
    ),
    ("customers.orders", "Orders", "订单", "訂單"),
    ("customers.products", "Products", "产品", "產品"),
    ("customers.product", "Product", "产品", "產品"),
    ("customers.new_order", "New order", "新建订单", "新增訂單"),
    (
        "customers.new_product",
        "New product",
        "新建产品",
        "新增產品",
    ),
    ("customers.orders_count", "orders", "笔订单", "筆訂單"),
    ("customers.last_order", "Last order", "最近下单", "最近下單"),
    (
        "customers.line_name_hint",
        "or a description",
        "或填写名称",
        "或填寫名稱",
    ),
    ("field.number", "Order number", "订单号", "訂單號"),
    ("field.channel", "Channel", "渠道", "通路"),
    ("field.ordered_at", "Ordered", "下单时间", "下單時間"),
    ("field.total", "Total", "合计", "合計"),
    ("field.quantity", "Qty", "数量", "數量"),
    ("field.unit_price", "Unit price", "单价", "單價"),
    ("field.discount", "Discount", "折扣", "折扣"),
    ("field.amount", "Amount", "金额", "金額"),
    ("field.external_id", "External id", "外部单号", "外部單號"),
    ("field.category", "Category", "类别", "類別"),
    ("field.unit", "Unit", "单位", "單位"),
    ("field.list_price", "List price", "标价", "標價"),
    ("field.sku", "SKU", "SKU", "SKU"),
    ("field.lines", "Order lines", "订单明细", "訂單明細"),
    ("channel.store", "Store", "门店", "門市"),
    ("channel.online", "Online shop", "网店", "網店"),
    ("channel.erp", "ERP", "ERP", "ERP"),
    ("channel.sales", "Sales", "销售", "銷售"),
    ("order_status.draft", "Draft", "草稿", "草稿"),
    ("order_status.confirmed", "Confirmed", "已确认", "已確認"),
    ("order_status.paid", "Paid", "已付款", "已付款"),
    ("order_status.shipped", "Shipped", "已发货", "已出貨"),
    ("order_status.completed", "Completed", "已完成", "已完成"),
    ("order_status.cancelled", "Cancelled", "已取消", "已取消"),
    ("order_status.returned", "Returned", "已退货", "已退貨"),
    ("activity.kind.order", "Order", "订单", "訂單"),
    (
        "err.discount_too_large",
        "is larger than the line",
        "超过了该行金额",
        "超過了該行金額",
    ),
    ("transfer.title", "Hand over customers", "转移客户", "轉移客戶"),
    ("transfer.intro", "Every account, contact and open task the person owns moves to the colleagues you tick, shared out in turn (a contact and its tasks follow their account). Each move is recorded in the record's timeline.", "此人负责的全部客户、联系人和未完成任务将轮流分配给所勾选的同事（联系人和任务跟随其所属客户）。每次转移都会记录在该记录的时间线中。", "此人負責的全部客戶、聯絡人和未完成任務將輪流分配給所勾選的同事（聯絡人和任務跟隨其所屬客戶）。每次轉移都會記錄在該記錄的時間軸中。"),
    ("transfer.from", "From", "转出人", "轉出人"),
    ("transfer.to", "To", "接收人", "接收人"),
    ("transfer.preview", "Preview", "预览", "預覽"),
    ("transfer.go", "Transfer", "转移", "轉移"),
    ("transfer.previewed", "Nothing moved yet — this is what would move:", "尚未转移，以下为将要转移的数量：", "尚未轉移，以下為將要轉移的數量："),
    ("transfer.moved", "Moved:", "已转移：", "已轉移："),
    ("transfer.tasks", "Open tasks", "未完成任务", "未完成任務"),
    ("field.from_user_id", "From", "转出人", "轉出人"),
    ("field.to_user_ids", "To", "接收人", "接收人"),
    ("dupes.intro", "This customer may already exist. Open the existing record, or save anyway:", "该客户可能已存在。请先查看已有记录，或仍然保存：", "該客戶可能已存在。請先查看已有記錄，或仍然儲存："),
    ("dupes.save_anyway", "Save anyway", "仍然保存", "仍然儲存"),
    ("dupes.same.credit_code", "same credit code", "统一社会信用代码相同", "統一社會信用代碼相同"),
    ("dupes.same.phone", "same phone", "电话相同", "電話相同"),
    ("dupes.same.email", "same email", "邮箱相同", "電子郵件相同"),
    ("dupes.same.name", "same name", "名称相同", "名稱相同"),
    ("customers.export_csv", "Export CSV", "导出 CSV", "匯出 CSV"),
    ("import.title", "Import", "导入", "匯入"),
    ("import.intro", "A CSV file (UTF-8 or GBK, as Excel saves it), an XLSX workbook, or vCards (contacts). The first row names the columns, in Chinese or English (姓名/name, 手机/phone, 公司/company …). Check first: the next page shows how each column is read and lets you change it. Orders: one row per order line, the lines of an order on consecutive rows; importing the same orders again changes nothing.", "CSV 文件（UTF-8 或 GBK，Excel 保存的即可）、XLSX 工作簿或 vCard 名片（联系人）。第一行为列名，中英文均可（姓名、手机、公司……）。建议先检查：下一页会显示每一列的对应字段，并可修改。订单：每行一条订单明细，同一订单的明细放在相邻的行；重复导入同一批订单不会产生重复。", "CSV 檔案（UTF-8 或 GBK，Excel 儲存的即可）、XLSX 活頁簿或 vCard 名片（聯絡人）。第一列為欄名，中英文均可（姓名、手機、公司……）。建議先檢查：下一頁會顯示每一欄的對應欄位，並可修改。訂單：每列一筆訂單明細，同一訂單的明細放在相鄰的列；重複匯入同一批訂單不會產生重複。"),
    ("import.file", "File (CSV, XLSX or vCard)", "文件（CSV、XLSX 或 vCard）", "檔案（CSV、XLSX 或 vCard）"),
    ("import.dry_run", "Check only (save nothing)", "仅检查（不保存）", "僅檢查（不儲存）"),
    ("import.duplicates", "When a contact already exists", "联系人已存在时", "聯絡人已存在時"),
    ("import.policy.skip", "Skip it", "跳过", "略過"),
    ("import.policy.update", "Update it with the file's values", "用文件中的值更新", "用檔案中的值更新"),
    ("import.policy.create", "Create another", "仍然新建", "仍然新建"),
    ("import.go", "Import", "导入", "匯入"),
    ("import.checked", "Checked — nothing saved yet:", "已检查，尚未保存：", "已檢查，尚未儲存："),
    ("import.done", "Imported:", "已导入：", "已匯入："),
    ("import.rows", "rows", "行", "列"),
    ("import.created", "created", "新建", "新建"),
    ("import.updated", "updated", "更新", "更新"),
    ("import.skipped", "skipped (already there)", "跳过（已存在）", "略過（已存在）"),
    ("import.failed", "with errors (not imported)", "有错误（未导入）", "有錯誤（未匯入）"),
    ("import.columns", "Columns", "列", "欄"),
    ("import.ignored", "ignored", "忽略", "忽略"),
    ("import.row", "Row", "行号", "列號"),
    ("import.reason", "Problem", "问题", "問題"),
    ("field.file", "File", "文件", "檔案"),
    ("err.unknown_encoding", "is neither UTF-8 nor GBK text", "既不是 UTF-8 也不是 GBK 编码的文本", "既不是 UTF-8 也不是 GBK 編碼的文字"),
    ("err.no_name_column", "has no name column (姓名 / name)", "没有姓名列（姓名 / name）", "沒有姓名欄（姓名 / name）"),
    ("err.unreadable_row", "cannot be read as CSV", "无法按 CSV 读取", "無法按 CSV 讀取"),
    ("merge.possible", "Possible duplicates", "可能重复", "可能重複"),
    ("merge.into_this", "Merge into this one", "合并到此记录", "合併到此紀錄"),
    ("merge.hint", "This contact keeps its values; empty fields take the other's; calls, tasks and orders move here. It can be undone.", "保留此联系人的信息，空白字段取对方的值；通话、任务和订单都会移到这里。可以撤销。", "保留此聯絡人的資訊，空白欄位取對方的值；通話、任務和訂單都會移到這裡。可以撤銷。"),
    ("merge.merged", "Merged", "已合并", "已合併"),
    ("merge.see_survivor", "Open the contact it was merged into", "查看合并后的联系人", "查看合併後的聯絡人"),
    ("merge.undo", "Undo merge", "撤销合并", "撤銷合併"),
    ("activity.kind.merged_into", "Merged", "已合并", "已合併"),
    ("err.in_trash", "is in the trash; restore it first", "在回收站中，请先恢复", "在資源回收筒中，請先還原"),
    ("merge.keep", "Keep", "保留", "保留"),
    ("merge.title", "Merge duplicates", "合并重复记录", "合併重複紀錄"),
    (
        "merge.explain_contact",
        "Choose, field by field, which value the kept contact has. The duplicate's activities, orders and assets move to it; the duplicate goes to the trash and the merge can be undone.",
        "逐个字段选择保留哪一个值。重复记录的活动、订单和资产会转移到保留的联系人；重复记录移到回收站，合并可以撤销。",
        "逐一欄位選擇保留哪一個值。重複紀錄的活動、訂單和資產會轉移到保留的聯絡人；重複紀錄移到資源回收筒，合併可以復原。",
    ),
    (
        "merge.explain_account",
        "Choose, field by field, which value the kept account has. The duplicate's contacts, child accounts, activities, orders and assets move to it; the duplicate goes to the trash and the merge can be undone.",
        "逐个字段选择保留哪一个值。重复客户的联系人、下级客户、活动、订单和资产会转移到保留的客户；重复记录移到回收站，合并可以撤销。",
        "逐一欄位選擇保留哪一個值。重複客戶的聯絡人、下級客戶、活動、訂單和資產會轉移到保留的客戶；重複紀錄移到資源回收筒，合併可以復原。",
    ),
    ("merge.same_values", "No field differs: only the history moves.", "没有不同的字段：只转移历史记录。", "沒有不同的欄位：只轉移歷史紀錄。"),
    ("merge.confirm", "Merge", "确认合并", "確認合併"),
    (
        "err.ancestor",
        "is a parent of the account kept; merge the other way round",
        "是保留客户的上级，请反向合并",
        "是保留客戶的上級，請反向合併",
    ),
    ("err.already_merged", "is already merged or in the trash", "已被合并或在回收站中", "已被合併或在資源回收筒中"),
    ("merge.duplicate", "Duplicate", "重复记录", "重複記錄"),
    ("merge.why", "Why", "原因", "原因"),
    ("merge.score", "Score", "相似度", "相似度"),
    ("merge.into_left", "Merge into the left one", "合并到左侧", "合併到左側"),
    ("merge.none", "No likely duplicates.", "没有发现可能重复的联系人。", "沒有發現可能重複的聯絡人。"),
    ("users.resend_invite", "Send the invitation again", "重新发送邀请", "重新傳送邀請"),
    ("err.required", "is required", "为必填项", "為必填"),
    (
        "err.invalid_email",
        "is not a valid email address",
        "不是有效的邮箱地址",
        "不是有效的電子郵件地址",
    ),
    ("err.too_long", "is too long", "太长", "太長"),
    (
        "err.invalid_phone",
        "is not a valid phone number",
        "不是有效的电话号码",
        "不是有效的電話號碼",
    ),
    (
        "err.invalid_credit_code",
        "is not a valid unified social credit code (18 characters, check digit)",
        "不是有效的统一社会信用代码（18 位，含校验码）",
        "不是有效的統一社會信用代碼（18 位，含校驗碼）",
    ),
    (
        "err.invalid_wechat",
        "is not a valid WeChat ID (6–20 letters, digits, _ or -)",
        "不是有效的微信号（6–20 位字母、数字、_ 或 -）",
        "不是有效的微信號（6–20 位字母、數字、_ 或 -）",
    ),
    (
        "err.invalid_url",
        "is not a valid web address",
        "不是有效的网址",
        "不是有效的網址",
    ),
    (
        "err.invalid_country",
        "is not a country code (e.g. CN)",
        "不是国家代码（如 CN）",
        "不是國家代碼（如 CN）",
    ),
    (
        "err.invalid_gender",
        "must be male or female",
        "只能是男或女",
        "只能是男或女",
    ),
    (
        "err.invalid_date",
        "is not a date (YYYY-MM-DD)",
        "不是日期（YYYY-MM-DD）",
        "不是日期（YYYY-MM-DD）",
    ),
    (
        "err.cycle",
        "would make the account its own ancestor",
        "会使客户成为自己的上级",
        "會使客戶成為自己的上級",
    ),
    (
        "err.in_pool",
        "waits in the pool: claim or assign it there",
        "在公海中：请在公海领取或分配",
        "在公海中：請在公海領取或分配",
    ),
    (
        "err.leads_only",
        "applies to lead pools only",
        "只适用于线索公海",
        "只適用於線索公海",
    ),
    (
        "err.out_of_scope",
        "is outside the records you may manage",
        "超出了您可管理的范围",
        "超出了您可管理的範圍",
    ),
    ("err.taken", "is already taken", "已被使用", "已被使用"),
    ("err.unknown", "does not exist", "不存在", "不存在"),
    ("err.invalid", "is not valid", "无效", "無效"),
    (
        "err.not_your_team",
        "is in another team: only an administrator or that team's manager can transfer their customers",
        "属于其他团队：只有管理员或该团队的经理可以转移其客户",
        "屬於其他團隊：只有管理員或該團隊的經理可以轉移其客戶",
    ),
    (
        "err.unknown_locale",
        "must be zh-CN, zh-TW or en",
        "必须是 zh-CN、zh-TW 或 en",
        "必須是 zh-CN、zh-TW 或 en",
    ),
    (
        "err.password_too_short",
        "must be at least 10 characters",
        "至少需要 10 个字符",
        "至少需要 10 個字元",
    ),
    ("err.wrong_password", "is wrong", "不正确", "不正確"),
    (
        "err.out_of_range",
        "is out of range",
        "超出范围",
        "超出範圍",
    ),
    (
        "err.unknown_field",
        "is not a known field (or cannot be used here)",
        "不是已知字段（或不能在此使用）",
        "不是已知欄位（或不能在此使用）",
    ),
    ("err.invalid_number", "is not a number", "不是数字", "不是數字"),
    (
        "err.invalid_money",
        "is not an amount in fen (an integer)",
        "不是以分为单位的金额（整数）",
        "不是以分為單位的金額（整數）",
    ),
    (
        "err.invalid_datetime",
        "is not a date and time (RFC 3339)",
        "不是日期时间（RFC 3339）",
        "不是日期時間（RFC 3339）",
    ),
    ("err.invalid_boolean", "must be yes or no", "只能是“是”或“否”", "只能是「是」或「否」"),
    ("err.unknown_option", "is not one of the choices", "不是可选项之一", "不是可選項之一"),
    ("err.invalid_type", "has the wrong type", "类型不正确", "類型不正確"),
    ("err.invalid_user", "is not a user id", "不是用户 ID", "不是使用者 ID"),
    ("err.duplicate", "is listed twice", "重复了", "重複了"),
    ("err.too_many", "has too many entries", "条目过多", "條目過多"),
    ("users.set_password", "Set password", "设置密码", "設定密碼"),
    ("audit.action.create", "Created", "创建", "建立"),
    ("audit.action.update", "Changed", "修改", "修改"),
    ("audit.action.delete", "Moved to trash", "移入回收站", "移入回收筒"),
    ("audit.action.restore", "Restored", "恢复", "還原"),
    ("audit.action.merge", "Merged", "合并", "合併"),
    ("audit.action.unmerge", "Merge undone", "撤销合并", "撤銷合併"),
    ("audit.action.transfer", "Transferred", "转移", "轉移"),
    ("audit.action.export", "Exported", "导出", "匯出"),
    ("audit.action.sign_in", "Signed in", "登录", "登入"),
    ("audit.action.sign_out_everywhere", "Signed out everywhere", "退出所有设备", "登出所有裝置"),
    ("audit.action.change_password", "Changed own password", "修改本人密码", "修改本人密碼"),
    ("audit.action.reset_password", "Reset password by link", "通过链接重置密码", "透過連結重設密碼"),
    ("audit.action.set_password", "Password set by admin", "管理员设置密码", "管理員設定密碼"),
    ("audit.action.sign_in_link", "Sign-in link made", "生成登录链接", "產生登入連結"),
    ("audit.action.invite", "Invited", "邀请", "邀請"),
    ("audit.action.accept_invite", "Accepted invitation", "接受邀请", "接受邀請"),
    ("audit.action.retry", "Retried", "重试", "重試"),
    ("audit.entity.accounts", "Account", "客户", "客戶"),
    ("audit.entity.contacts", "Contact", "联系人", "聯絡人"),
    ("audit.entity.activities", "Activity", "活动", "活動"),
    ("audit.entity.orders", "Order", "订单", "訂單"),
    ("audit.entity.products", "Product", "产品", "產品"),
    ("audit.entity.assets", "Asset", "资产", "資產"),
    ("audit.entity.custom_fields", "Custom field", "自定义字段", "自訂欄位"),
    ("audit.entity.users", "User", "用户", "使用者"),
    ("audit.entity.teams", "Team", "团队", "團隊"),
    ("audit.entity.roles", "Role", "角色", "角色"),
    ("audit.entity.api_tokens", "API token", "API 令牌", "API 權杖"),
    ("audit.entity.tenants", "Company settings", "公司设置", "公司設定"),
    ("audit.entity.jobs", "Job", "任务", "工作"),
    ("jobs.message", "Message", "消息", "訊息"),
    ("nav.me", "Me", "我的", "我的"),
    ("nav.menu", "Menu", "菜单", "選單"),
    // Field names in the error box of forms outside the customer records.
    ("field.password", "Password", "密码", "密碼"),
    ("field.current_password", "Current password", "当前密码", "目前密碼"),
    ("field.new_password", "New password", "新密码", "新密碼"),
    ("field.token", "Link", "链接", "連結"),
    ("field.subject", "Subject", "主题", "主題"),
    ("field.due_at", "Due", "截止", "截止"),
    ("field.remind_at", "Remind at", "提醒时间", "提醒時間"),
    ("field.occurred_at", "When", "时间", "時間"),
    ("import.value", "Value", "值", "值"),
    ("import.orders_from", "orders (from {lines} rows)", "张订单（共 {lines} 行）", "張訂單（共 {lines} 列）"),
    (
        "import.download_errors",
        "Download the refused rows (CSV, with the reason) to fix and import again",
        "下载未导入的行（CSV，含原因），修改后重新导入",
        "下載未匯入的列（CSV，含原因），修改後重新匯入",
    ),
    ("import.matched", "Already there as", "已存在的记录", "已存在的紀錄"),
    ("customers.type_to_find", "Type a name, pinyin or phone…", "输入名称、拼音或电话…", "輸入名稱、拼音或電話…"),
    (
        "problem.not_found_page",
        "There is no page at this address. It may have moved, or the link may be mistyped.",
        "此地址没有页面。它可能已移动，或链接有误。",
        "此網址沒有頁面。它可能已移動，或連結有誤。",
    ),
    ("common.list_sep", ", ", "、", "、"),
    ("facts.open_tasks", "Open tasks", "未完成任务", "未完成任務"),
    ("facts.last_touch", "Last contact", "最近联系", "最近聯繫"),
    ("facts.never", "Not yet", "尚无", "尚無"),
    ("views.filters", "Filter options", "筛选条件", "篩選條件"),
    ("home.reminders", "Reminders", "提醒", "提醒"),
    ("home.no_reminders", "No reminders due.", "暂无到期提醒。", "暫無到期提醒。"),
    ("home.tasks", "My tasks", "我的任务", "我的任務"),
    ("home.all_tasks", "All tasks", "全部任务", "全部任務"),
    ("home.overdue", "Overdue", "已逾期", "已逾期"),
    ("home.due_today", "Due today", "今天到期", "今天到期"),
    ("home.nothing_today", "Nothing due today.", "今天没有到期的任务。", "今天沒有到期的任務。"),
    ("home.later", "Later or undated", "之后或未定日期", "之後或未定日期"),
    ("home.recently_viewed", "Recently viewed", "最近查看", "最近檢視"),
    ("home.none_viewed", "Records you open appear here.", "您打开过的记录会显示在这里。", "您開啟過的紀錄會顯示在這裡。"),
    ("home.recently_changed", "Recently changed by you", "您最近修改的", "您最近修改的"),
    ("home.none_changed", "Records you change appear here.", "您修改过的记录会显示在这里。", "您修改過的紀錄會顯示在這裡。"),
    (
        "merge.notice.merged",
        "Merged: the duplicate's history is here now and it is in the trash.",
        "已合并：重复记录的历史已移到这里，重复记录已移入回收站。",
        "已合併：重複紀錄的歷史已移到這裡，重複紀錄已移入回收筒。",
    ),
    (
        "merge.notice.unmerged",
        "Merge undone: both records are back as they were.",
        "已撤销合并：两条记录均已恢复原状。",
        "已撤銷合併：兩筆紀錄均已恢復原狀。",
    ),
    (
        "jobs.outbox_hint",
        "Emails wait here until they are sent (without an SMTP server, until one is set); open one to read it in full, links included.",
        "邮件在发送前在此等待（未配置 SMTP 服务器时会一直等待）；展开可查看全文，包括其中的链接。",
        "郵件在寄出前在此等待（未設定 SMTP 伺服器時會一直等待）；展開可查看全文，包括其中的連結。",
    ),
    ("jobs.status.pending", "Waiting", "等待中", "等待中"),
    ("jobs.status.running", "Running", "执行中", "執行中"),
    ("jobs.status.done", "Done", "已完成", "已完成"),
    ("jobs.status.dead", "Failed (gave up)", "失败（已放弃）", "失敗（已放棄）"),
    ("jobs.status.cancelled", "Cancelled", "已取消", "已取消"),
    ("jobs.kind.email", "Email", "邮件", "郵件"),
    (
        "users.set_password_hint",
        "Their sessions end; tell them the password in person.",
        "该用户的登录会话将结束；请当面告知新密码。",
        "該使用者的登入工作階段將結束；請當面告知新密碼。",
    ),
    ("users.sign_in_link", "Sign-in link", "登录链接", "登入連結"),
    (
        "users.sign_in_link_hint",
        "A one-time link to set a password, to send by chat or read out — no email needed.",
        "一次性设置密码的链接，可通过聊天发送或口头告知，无需邮件。",
        "一次性設定密碼的連結，可透過聊天傳送或口頭告知，無需郵件。",
    ),
    ("users.sign_in_link_expires", "Works once, until", "仅可使用一次，有效期至", "僅可使用一次，有效期至"),
    ("err.control_characters", "contains control characters (such as NUL)", "含有控制字符（如 NUL）", "含有控制字元（如 NUL）"),
    ("err.too_large", "is too large", "过大", "過大"),
    (
        "err.not_applicable",
        "does not apply to this kind of field",
        "不适用于此类字段",
        "不適用於此類欄位",
    ),
    ("err.immutable", "cannot be changed after creation", "创建后不可修改", "建立後不可修改"),
    (
        "err.values_not_unique",
        "cannot be set: existing records share a value",
        "无法设置：已有记录的值重复",
        "無法設定：已有紀錄的值重複",
    ),
    (
        "err.too_many_fields",
        "already has the maximum number of custom fields",
        "的自定义字段已达上限",
        "的自訂欄位已達上限",
    ),
    (
        "err.last_admin",
        "would leave the company without an active administrator",
        "将导致公司没有启用的管理员",
        "將導致公司沒有啟用的管理員",
    ),
    (
        "err.cannot_deactivate_self",
        "cannot be changed for yourself",
        "不能对自己执行此操作",
        "不能對自己執行此操作",
    ),
    (
        "err.invalid_link",
        "this link is invalid, used or expired",
        "此链接无效、已使用或已过期",
        "此連結無效、已使用或已過期",
    ),
    (
        "err.unknown_time_zone",
        "is not a known time zone",
        "不是有效的时区",
        "不是有效的時區",
    ),
    (
        "err.invalid_currency",
        "must be a 3-letter ISO 4217 code",
        "必须是 3 位 ISO 4217 货币代码",
        "必須是 3 碼 ISO 4217 貨幣代碼",
    ),
    (
        "err.invalid_key",
        "may hold only a–z, 0–9 and _",
        "只能包含 a–z、0–9 和 _",
        "只能包含 a–z、0–9 和 _",
    ),
    ("err.read_only", "cannot be changed", "不可修改", "不可修改"),
    (
        "err.unknown_module",
        "is not a module",
        "不是有效的模块",
        "不是有效的模組",
    ),
    (
        "err.reused_with_different_request",
        "was already used for a different request",
        "已用于另一个不同的请求",
        "已用於另一個不同的請求",
    ),
    ("problem.not_found", "Not found", "未找到", "找不到"),
    ("problem.unauthorized", "Not signed in", "未登录", "未登入"),
    ("problem.forbidden", "Not allowed", "无权限", "無權限"),
    ("problem.bad_request", "Bad request", "请求有误", "請求有誤"),
    (
        "problem.validation",
        "Some fields are invalid",
        "部分字段无效",
        "部分欄位無效",
    ),
    ("problem.conflict", "Conflict", "冲突", "衝突"),
    (
        "problem.precondition",
        "The record was changed by someone else",
        "该记录已被他人修改",
        "該紀錄已被他人修改",
    ),
    (
        "problem.rate_limited",
        "Too many attempts; try again later",
        "尝试次数过多，请稍后再试",
        "嘗試次數過多，請稍後再試",
    ),
    (
        "problem.unavailable",
        "Temporarily unavailable",
        "暂时不可用",
        "暫時無法使用",
    ),
    ("problem.internal", "Internal error", "内部错误", "內部錯誤"),
];

/// Normalises a language tag to one we serve: `zh-CN`, `zh-TW` or `en`.
pub fn normalize(tag: &str) -> Option<&'static str> {
    let t = tag.trim().to_ascii_lowercase();
    if t.starts_with("zh-tw")
        || t.starts_with("zh-hk")
        || t.starts_with("zh-hant")
        || t.starts_with("zh-mo")
    {
        Some("zh-TW")
    } else if t.starts_with("zh") {
        Some("zh-CN")
    } else if t.starts_with("en") {
        Some("en")
    } else {
        None
    }
}

/// Picks the best served language from an `Accept-Language` header (by q-value).
pub fn from_accept_language(header: &str) -> Option<&'static str> {
    let mut best: Option<(f32, &'static str)> = None;
    for part in header.split(',') {
        let mut it = part.split(';');
        let tag = it.next().unwrap_or("");
        let q = it
            .find_map(|p| p.trim().strip_prefix("q="))
            .and_then(|q| q.parse::<f32>().ok())
            .unwrap_or(1.0);
        if let Some(l) = normalize(tag) {
            if best.is_none_or(|(bq, _)| q > bq) {
                best = Some((q, l));
            }
        }
    }
    best.map(|(_, l)| l)
}

/// Each module's messages, in a file a translator edits: one message a line, `key`, English,
/// 简体中文 and 繁體中文 (empty: as 简体) separated by tabs; `#` starts a comment line. New
/// modules add their file here; `MESSAGES` above holds what came before the catalogues.
const CATALOGUES: &[(&str, &str)] = &[
    ("calendars", include_str!("../messages/calendars.tsv")),
    ("leads", include_str!("../messages/leads.tsv")),
    ("forms", include_str!("../messages/forms.tsv")),
    ("deals", include_str!("../messages/deals.tsv")),
    ("quotes", include_str!("../messages/quotes.tsv")),
    ("approvals", include_str!("../messages/approvals.tsv")),
    ("forecast", include_str!("../messages/forecast.tsv")),
    ("value", include_str!("../messages/value.tsv")),
    ("grading", include_str!("../messages/grading.tsv")),
    ("reports", include_str!("../messages/reports.tsv")),
    ("dashboards", include_str!("../messages/dashboards.tsv")),
    ("service", include_str!("../messages/service.tsv")),
    (
        "notifications",
        include_str!("../messages/notifications.tsv"),
    ),
];

/// A message with `{name}` placeholders filled from `params` (strings and numbers).
pub fn fill(locale: &str, key: &str, params: &serde_json::Value) -> String {
    let mut s = t(locale, key);
    if let Some(map) = params.as_object() {
        for (k, v) in map {
            let v = match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Null => String::new(),
                other => other.to_string(),
            };
            s = s.replace(&format!("{{{k}}}"), &v);
        }
    }
    s
}

type Entry = (&'static str, &'static str, &'static str);

/// The lines of a catalogue: (key, (en, zh-CN, zh-TW)), or the line that is not a message.
fn catalogue_lines(
    text: &'static str,
) -> impl Iterator<Item = Result<(&'static str, Entry), &'static str>> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let mut cols = l.split('\t');
            match (
                cols.next(),
                cols.next(),
                cols.next(),
                cols.next(),
                cols.next(),
            ) {
                (Some(k), Some(en), Some(cn), tw, None)
                    if !k.is_empty() && !en.is_empty() && !cn.is_empty() =>
                {
                    Ok((k, (en, cn, tw.unwrap_or(""))))
                }
                _ => Err(l),
            }
        })
}

static TABLE: std::sync::LazyLock<std::collections::HashMap<&'static str, Entry>> =
    std::sync::LazyLock::new(|| {
        MESSAGES
            .iter()
            .map(|(k, en, cn, tw)| (*k, (*en, *cn, *tw)))
            .chain(
                CATALOGUES
                    .iter()
                    .flat_map(|(_, text)| catalogue_lines(text).filter_map(Result::ok)),
            )
            .collect()
    });

pub fn t(locale: &str, key: &str) -> String {
    match TABLE.get(key) {
        Some((en, cn, tw)) => match locale {
            "zh-TW" if !tw.is_empty() => (*tw).to_owned(),
            l if l.starts_with("zh") => (*cn).to_owned(),
            _ => (*en).to_owned(),
        },
        None => key.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_is_translated_and_unique() {
        let mut seen = std::collections::HashSet::new();
        for (k, en, cn, _) in MESSAGES {
            assert!(seen.insert(*k), "duplicate key {k}");
            assert!(!en.is_empty() && !cn.is_empty(), "{k} lacks a translation");
        }
        for (module, text) in CATALOGUES {
            for line in catalogue_lines(text) {
                let (k, _) = line.unwrap_or_else(|l| {
                    panic!("{module}: not key, English, 简体, 繁體 (tabs): {l}")
                });
                assert!(seen.insert(k), "{module}: duplicate key {k}");
            }
        }
        assert_eq!(t("zh-TW", "cal.wd.mon"), "週一");
        assert_eq!(t("zh-CN", "cal.wd.mon"), "周一");
    }

    #[test]
    fn accept_language() {
        assert_eq!(
            from_accept_language("zh-CN,zh;q=0.9,en;q=0.8"),
            Some("zh-CN")
        );
        assert_eq!(
            from_accept_language("en-US,en;q=0.9,zh-CN;q=0.8"),
            Some("en")
        );
        assert_eq!(from_accept_language("fr-FR, zh-TW;q=0.5"), Some("zh-TW"));
        assert_eq!(from_accept_language("fr"), None);
        assert_eq!(t("zh-CN", "auth.sign_in"), "登录");
        assert_eq!(t("en", "auth.sign_in"), "Sign in");
        assert_eq!(t("zh-TW", "auth.sign_in"), "登入");
    }
}
